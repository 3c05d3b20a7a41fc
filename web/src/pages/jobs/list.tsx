import { PageHeader, EmptyState } from '../../components/ui';
import { useTitle } from '../../lib/hooks';

export function JobsPage(_props: { params: Record<string, string> }) {
  useTitle('Jobs');
  return (
    <>
      <PageHeader title="Jobs" />
      <EmptyState title="Coming soon" />
    </>
  );
}
