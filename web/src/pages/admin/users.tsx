import { PageHeader, EmptyState } from '../../components/ui';
import { useTitle } from '../../lib/hooks';

export function UsersPage(_props: { params: Record<string, string> }) {
  useTitle('Users');
  return (
    <>
      <PageHeader title="Users" />
      <EmptyState title="Coming soon" />
    </>
  );
}
