import { PageHeader, EmptyState } from '../../components/ui';
import { useTitle } from '../../lib/hooks';

export function AuditPage(_props: { params: Record<string, string> }) {
  useTitle('Audit log');
  return (
    <>
      <PageHeader title="Audit log" />
      <EmptyState title="Coming soon" />
    </>
  );
}
