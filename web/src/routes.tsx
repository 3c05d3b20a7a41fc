// Every page of the console, by path. A page is a component taking its route params.
import type { FunctionComponent } from 'preact';
import { JobsPage } from './pages/jobs/list';
import { JobPage } from './pages/jobs/detail';
import { NewJobPage } from './pages/jobs/new';
import { StoragePage } from './pages/storage';
import { ImagesPage } from './pages/images';
import { SecretsPage } from './pages/secrets';
import { ProjectsPage } from './pages/projects';
import { UsersPage } from './pages/admin/users';
import { AuditPage } from './pages/admin/audit';
import { AccountPage } from './pages/account'; // org: the account page

export interface RouteDef {
  pattern: string;
  component: FunctionComponent<{ params: Record<string, string> }>;
  admin?: boolean;
}

export const routes: RouteDef[] = [
  { pattern: '/jobs/new', component: NewJobPage },
  { pattern: '/jobs/:id', component: JobPage },
  { pattern: '/jobs', component: JobsPage },
  { pattern: '/storage/*', component: StoragePage },
  { pattern: '/storage', component: StoragePage },
  { pattern: '/images', component: ImagesPage },
  { pattern: '/secrets', component: SecretsPage },
  { pattern: '/projects', component: ProjectsPage },
  { pattern: '/projects/:name', component: ProjectsPage },
  { pattern: '/admin/users', component: UsersPage, admin: true },
  { pattern: '/admin/audit', component: AuditPage, admin: true },
  { pattern: '/account', component: AccountPage }, // org: reached from the user name in the top bar
];

export const nav: { href: string; label: string; admin?: boolean }[] = [
  { href: '/jobs', label: 'Jobs' },
  { href: '/storage', label: 'Storage' },
  { href: '/images', label: 'Images' },
  { href: '/secrets', label: 'Secrets' },
  { href: '/projects', label: 'Projects' },
  { href: '/admin/users', label: 'Users', admin: true },
  { href: '/admin/audit', label: 'Audit log', admin: true },
];
