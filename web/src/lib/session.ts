// Who is logged in (GET /api/v1/auth/whoami), shared by every page.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface Me {
  name: string;
  kind: string;
  admin: boolean;
  cluster: string;
  projects: { name: string; role: string }[];
  roles: string[];
  csrf_token?: string;
}

export interface Session {
  me: Me;
  refresh: () => Promise<void>;
  logout: () => Promise<void>;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a logged-in page');
  return s;
}
