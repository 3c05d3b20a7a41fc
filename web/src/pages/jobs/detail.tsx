import { PageHeader, EmptyState } from '../../components/ui';
import { useTitle } from '../../lib/hooks';

export function JobPage(_props: { params: Record<string, string> }) {
  useTitle('Job');
  return (
    <>
      <PageHeader title="Job" />
      <EmptyState title="Coming soon" />
    </>
  );
}
