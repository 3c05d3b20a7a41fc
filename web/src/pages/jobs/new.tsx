import { PageHeader, EmptyState } from '../../components/ui';
import { useTitle } from '../../lib/hooks';

export function NewJobPage(_props: { params: Record<string, string> }) {
  useTitle('New job');
  return (
    <>
      <PageHeader title="New job" />
      <EmptyState title="Coming soon" />
    </>
  );
}
