/**
 * The tray menu and icon state as pure functions of the engine's state: one checkbox per forward (checked
 * when enabled; clicking toggles it), Start all, Stop all, Open Berth, the desktop settings, Quit. The tray
 * rebuilds the native menu from this model whenever a forward changes.
 */
import type { ForwardStatus } from '../app/api/contract.js';
import { describeListen } from '../app/config/schema.js';
import type { Settings, StartForwards } from './settings.js';

/** What clicking a menu item does. */
export type TrayAction =
  | { type: 'toggle'; id: string; enable: boolean }
  | { type: 'start-all'; ids: string[] }
  | { type: 'stop-all'; ids: string[] }
  | { type: 'open' }
  | { type: 'quit' }
  | { type: 'settings'; change: Partial<Settings> };

/** One menu item, as data (deep-equal testable); main/tray.ts turns it into Electron's template. */
export interface TrayItem {
  label?: string;
  type: 'normal' | 'checkbox' | 'radio' | 'separator' | 'submenu';
  checked?: boolean;
  enabled?: boolean;
  /** Shown next to the label (a forward's problem). */
  sublabel?: string;
  action?: TrayAction;
  submenu?: TrayItem[];
}

/** The tray icon's state: nothing running, all up, some stopped or starting, some failing. */
export type TrayState = 'idle' | 'up' | 'partial' | 'failing';

const LAUNCH_LABELS: Record<StartForwards, string> = {
  always: 'Always',
  'as-they-were': 'As they were',
  never: 'Never',
};

/** True when a forward needs attention: its listener failed, its target does not answer, or its backend gave up. */
export function isFailing(forward: ForwardStatus): boolean {
  return (
    forward.state === 'error' ||
    forward.backend?.state === 'failed' ||
    (forward.state === 'listening' && forward.health.state === 'unhealthy')
  );
}

/** The overall state the icon shows. */
export function trayState(forwards: readonly ForwardStatus[]): TrayState {
  if (forwards.some((f) => f.enabled && isFailing(f))) return 'failing';
  const enabled = forwards.filter((f) => f.enabled);
  if (enabled.length === 0) return 'idle';
  return enabled.length === forwards.length && enabled.every((f) => f.state === 'listening')
    ? 'up'
    : 'partial';
}

/** The tooltip: counts a person can read at a glance. */
export function trayTooltip(forwards: readonly ForwardStatus[]): string {
  if (forwards.length === 0) return 'Berth: no forwards';
  const listening = forwards.filter((f) => f.state === 'listening').length;
  const unhealthy = forwards.filter((f) => f.state === 'listening' && f.health.state === 'unhealthy').length;
  const failing = forwards.filter((f) => f.enabled && isFailing(f)).length - unhealthy;
  const of = `${listening} of ${forwards.length} forward${forwards.length === 1 ? '' : 's'} listening`;
  const problems = [
    ...(failing > 0 ? [`${failing} failing`] : []),
    ...(unhealthy > 0 ? [`${unhealthy} unhealthy`] : []),
  ];
  return ['Berth: ' + of, ...problems].join(', ');
}

/** Builds the menu model from the forwards and the settings. */
export function trayMenu(forwards: readonly ForwardStatus[], settings: Settings): TrayItem[] {
  const toStart = forwards.filter((f) => !f.enabled || f.state === 'error').map((f) => f.id);
  const toStop = forwards.filter((f) => f.enabled).map((f) => f.id);
  const items: TrayItem[] = forwards.map((f) => forwardItem(f));
  if (items.length === 0) items.push({ type: 'normal', label: 'No forwards yet', enabled: false });
  items.push(
    { type: 'separator' },
    {
      type: 'normal',
      label: 'Start all',
      enabled: toStart.length > 0,
      action: { type: 'start-all', ids: toStart },
    },
    {
      type: 'normal',
      label: 'Stop all',
      enabled: toStop.length > 0,
      action: { type: 'stop-all', ids: toStop },
    },
    { type: 'separator' },
    { type: 'normal', label: 'Open Berth', action: { type: 'open' } },
    { type: 'submenu', label: 'Settings', submenu: settingsItems(settings) },
    { type: 'separator' },
    { type: 'normal', label: 'Quit', action: { type: 'quit' } },
  );
  return items;
}

function forwardItem(forward: ForwardStatus): TrayItem {
  const item: TrayItem = {
    type: 'checkbox',
    // On Windows and Linux "&" marks a mnemonic; a name with "&" must show it as written.
    label: `${(forward.name ?? forward.id).replaceAll('&', '&&')} (${describeListen(forward)})`,
    checked: forward.enabled,
    action: { type: 'toggle', id: forward.id, enable: !forward.enabled },
  };
  const note = stateNote(forward);
  if (note) item.sublabel = note;
  return item;
}

function stateNote(forward: ForwardStatus): string | undefined {
  if (forward.state === 'error') return forward.error ? `Error: ${forward.error.code}` : 'Error';
  if (forward.backend?.state === 'failed') return 'Backend failed';
  if (forward.state === 'listening' && forward.health.state === 'unhealthy') return 'Unhealthy';
  if (forward.state === 'starting') return 'Starting…';
  if (forward.enabled && forward.state === 'stopped') return 'Stopped';
  return undefined;
}

function settingsItems(settings: Settings): TrayItem[] {
  const launch = (Object.keys(LAUNCH_LABELS) as StartForwards[]).map((value): TrayItem => ({
    type: 'radio',
    label: LAUNCH_LABELS[value],
    checked: settings.startForwards === value,
    action: { type: 'settings', change: { startForwards: value } },
  }));
  return [
    {
      type: 'checkbox',
      label: 'Start Berth at login',
      checked: settings.startAtLogin,
      action: { type: 'settings', change: { startAtLogin: !settings.startAtLogin } },
    },
    {
      type: 'checkbox',
      label: 'Keep running in the tray when the window closes',
      checked: settings.closeToTray,
      action: { type: 'settings', change: { closeToTray: !settings.closeToTray } },
    },
    { type: 'separator' },
    { type: 'normal', label: 'Start forwards on launch', enabled: false },
    ...launch,
  ];
}
