import { PageHeader, EmptyState } from '../components/ui';
import { useTitle } from '../lib/hooks';

export function StoragePage(_props: { params: Record<string, string> }) {
  useTitle('Storage');
  return (
    <>
      <PageHeader title="Storage" />
      <EmptyState title="Coming soon" />
    </>
  );
}
