import { PageHeader, EmptyState } from '../components/ui';
import { useTitle } from '../lib/hooks';

export function SecretsPage(_props: { params: Record<string, string> }) {
  useTitle('Secrets');
  return (
    <>
      <PageHeader title="Secrets" />
      <EmptyState title="Coming soon" />
    </>
  );
}
