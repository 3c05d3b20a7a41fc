// Shared building blocks. Every control has a visible label (or aria-label), every
// error shows the server's own message, and every empty list says what to do next.
import type { ButtonHTMLAttributes, ComponentChildren } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';
import { ApiError } from '../lib/api';
import { useAction } from '../lib/hooks';

export function ErrorBanner({ error, onDismiss }: { error: Error | null | undefined; onDismiss?: () => void }) {
  if (!error) return null;
  const code = error instanceof ApiError && error.code && !error.code.startsWith('http_') ? error.code : '';
  return (
    <div class="banner banner-error" role="alert">
      <span class="banner-text">
        {error.message}
        {code && <span class="muted"> ({code})</span>}
      </span>
      {onDismiss && (
        <button type="button" class="btn-link" onClick={onDismiss} aria-label="Dismiss the error">
          ×
        </button>
      )}
    </div>
  );
}

export function Notice({ children, kind = 'info' }: { children: ComponentChildren; kind?: 'info' | 'success' | 'warn' }) {
  return (
    <div class={`banner banner-${kind}`} role="status">
      {children}
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      {label}
    </p>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <header class="page-header">
      <h1>{title}</h1>
      {children && <div class="page-actions">{children}</div>}
    </header>
  );
}

type FieldProps = {
  label: string;
  hint?: ComponentChildren;
  children: (id: string, describedBy: string | undefined) => ComponentChildren;
};

// <Field label="Image">{(id, desc) => <input id={id} aria-describedby={desc} />}</Field>
export function Field({ label, hint, children }: FieldProps) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children(id, hintId)}
      {hint && (
        <small id={hintId} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

type DialogProps = {
  title: string;
  open: boolean;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
};

// A modal <dialog>: focus moves into it, Escape closes it, focus returns afterwards.
export function Dialog({ title, open, onClose, children, wide }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      class={wide ? 'dialog dialog-wide' : 'dialog'}
      aria-labelledby={titleId}
      onClose={onClose}
      onCancel={(e: Event) => {
        e.preventDefault();
        onClose();
      }}
    >
      {open && (
        <>
          <header class="dialog-header">
            <h2 id={titleId}>{title}</h2>
            <button type="button" class="btn-link" onClick={onClose} aria-label="Close">
              ×
            </button>
          </header>
          <div class="dialog-body">{children}</div>
        </>
      )}
    </dialog>
  );
}

type ButtonProps = Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'type'> & {
  kind?: 'primary' | 'danger' | 'default' | 'link';
  busy?: boolean;
  type?: 'button' | 'submit';
  disabled?: boolean;
};

export function Button({ kind = 'default', busy, children, type = 'button', disabled, ...rest }: ButtonProps) {
  return (
    <button type={type} class={`btn btn-${kind}`} disabled={disabled || busy} aria-busy={busy ? 'true' : undefined} {...rest}>
      {children}
    </button>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export function Progress({ value, max, label }: { value: number; max: number; label: string }) {
  const pct = max > 0 ? Math.min(100, Math.round((value / max) * 100)) : 0;
  return (
    <div class="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
      <div class="progress-bar" style={{ width: `${pct}%` }} />
    </div>
  );
}

type TabsProps = {
  label: string; // what the tabs choose, for screen readers
  tabs: { id: string; label: string }[];
  selected: string;
  onSelect: (id: string) => void;
  panelId?: string; // the element the tabs control
};

// A tab list with a roving tabindex: Tab reaches the selected tab, the arrow keys, Home
// and End move between tabs and select them.
export function Tabs({ label, tabs, selected, onSelect, panelId }: TabsProps) {
  const base = useId();
  const onKeyDown = (e: KeyboardEvent) => {
    const i = tabs.findIndex((t) => t.id === selected);
    const to = ({ ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 } as Record<string, number>)[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const t = tabs[(to + tabs.length) % tabs.length];
    onSelect(t.id);
    setTimeout(() => document.getElementById(`${base}-${t.id}`)?.focus(), 0);
  };
  return (
    <div class="tabs" role="tablist" aria-label={label} onKeyDown={onKeyDown}>
      {tabs.map((t) => (
        <button
          key={t.id}
          id={`${base}-${t.id}`}
          type="button"
          role="tab"
          aria-selected={t.id === selected ? 'true' : 'false'}
          aria-controls={panelId}
          tabIndex={t.id === selected ? 0 : -1}
          onClick={() => onSelect(t.id)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

// "Are you sure?" for destructive actions; shows the API's refusal inside the dialog.
export function ConfirmDialog({
  title,
  open,
  onClose,
  onConfirm,
  confirmLabel,
  cancelLabel = 'Cancel',
  children,
}: {
  title: string;
  open: boolean;
  onClose: () => void;
  onConfirm: () => Promise<unknown>;
  confirmLabel: string;
  cancelLabel?: string;
  children: ComponentChildren;
}) {
  const act = useAction(onConfirm);
  useEffect(() => {
    if (open) act.setError(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open]);
  return (
    <Dialog title={title} open={open} onClose={onClose}>
      <ErrorBanner error={act.error} />
      <div>{children}</div>
      <div class="dialog-actions">
        <Button onClick={onClose}>{cancelLabel}</Button>
        <Button
          kind="danger"
          busy={act.busy}
          onClick={async () => {
            if (await act.run()) onClose();
          }}
        >
          {confirmLabel}
        </Button>
      </div>
    </Dialog>
  );
}

export type SelectOption = string | { value: string; label: string };

type SelectProps = {
  id?: string;
  value: string;
  options: SelectOption[]; // a string is its own label
  onValue: (value: string) => void;
  disabled?: boolean;
  'aria-label'?: string;
  'aria-describedby'?: string;
};

// A <select> over a list of options; labels come from a <Field> or aria-label.
export function Select({ options, onValue, ...rest }: SelectProps) {
  return (
    <select {...rest} onChange={(e) => onValue((e.target as HTMLSelectElement).value)}>
      {options.map((o) => {
        const { value, label } = typeof o === 'string' ? { value: o, label: o } : o;
        return (
          <option key={value} value={value}>
            {label}
          </option>
        );
      })}
    </select>
  );
}
