import { PageHeader, EmptyState } from '../components/ui';
import { useTitle } from '../lib/hooks';

export function ImagesPage(_props: { params: Record<string, string> }) {
  useTitle('Images');
  return (
    <>
      <PageHeader title="Images" />
      <EmptyState title="Coming soon" />
    </>
  );
}
