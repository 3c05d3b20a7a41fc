import { PageHeader, EmptyState } from '../components/ui';
import { useTitle } from '../lib/hooks';

export function ProjectsPage(_props: { params: Record<string, string> }) {
  useTitle('Projects');
  return (
    <>
      <PageHeader title="Projects" />
      <EmptyState title="Coming soon" />
    </>
  );
}
