/**
 * The tray (menu bar) icon: rebuilt from the pure model of main/tray-menu.ts whenever a forward or a
 * setting changes, never on counter updates. Clicks become `TrayAction`s run by `runTrayAction`.
 */
import type { MenuItemConstructorOptions, Tray } from 'electron';
import type { BerthApi, ForwardStatus } from '../app/api/contract.js';
import type { ElectronMain } from './electron.js';
import type { Settings, SettingsStore } from './settings.js';
import { trayPng } from './tray-icon.js';
import {
  trayMenu,
  trayState,
  trayTooltip,
  type TrayAction,
  type TrayItem,
  type TrayState,
} from './tray-menu.js';

/** Turns the menu model into Electron's template, with clicks dispatched as actions. */
export function toTemplate(
  items: readonly TrayItem[],
  dispatch: (action: TrayAction) => void,
): MenuItemConstructorOptions[] {
  return items.map((item) => {
    const option: MenuItemConstructorOptions = { type: item.type };
    if (item.label !== undefined) option.label = item.label;
    if (item.sublabel !== undefined) option.sublabel = item.sublabel;
    if (item.checked !== undefined) option.checked = item.checked;
    if (item.enabled !== undefined) option.enabled = item.enabled;
    if (item.submenu) option.submenu = toTemplate(item.submenu, dispatch);
    const action = item.action;
    if (action) option.click = () => dispatch(action);
    return option;
  });
}

/** What the tray needs. */
export interface BerthTrayOptions {
  electron: Pick<ElectronMain, 'Tray' | 'Menu' | 'nativeImage'>;
  api: Pick<BerthApi, 'subscribe'>;
  settings: Pick<SettingsStore, 'get' | 'onChange'>;
  dispatch: (action: TrayAction) => void;
}

/** The tray icon and its menu, following the engine's pushed state. */
export class BerthTray {
  private readonly forwards = new Map<string, ForwardStatus>();
  private tray: Tray | undefined;
  private lastMenu = '';
  private lastState: TrayState | undefined;
  private readonly stops: (() => void)[] = [];

  constructor(private readonly options: BerthTrayOptions) {}

  /** Creates the icon and starts following the engine and the settings. */
  start(): void {
    const { electron } = this.options;
    this.lastState = 'idle';
    this.tray = new electron.Tray(electron.nativeImage.createFromBuffer(trayPng('idle')));
    // Windows and macOS: a click on the icon opens the window (Linux indicators only show the menu).
    this.tray.on('click', () => this.options.dispatch({ type: 'open' }));
    this.stops.push(
      this.options.api.subscribe((event) => {
        if (event.type === 'snapshot') {
          this.forwards.clear();
          for (const forward of event.forwards) this.forwards.set(forward.id, forward);
        } else if (event.type === 'forward') {
          this.forwards.set(event.forward.id, event.forward);
        } else if (event.type === 'removed') {
          this.forwards.delete(event.id);
        } else {
          return;
        }
        this.render();
      }),
      this.options.settings.onChange((settings) => this.render(settings)),
    );
    this.render();
  }

  /** Removes the icon and stops following. */
  destroy(): void {
    for (const stop of this.stops.splice(0)) stop();
    this.tray?.destroy();
    this.tray = undefined;
  }

  private render(settings: Settings = this.options.settings.get()): void {
    const tray = this.tray;
    if (!tray) return;
    const forwards = [...this.forwards.values()];
    const model = trayMenu(forwards, settings);
    const key = JSON.stringify(model);
    if (key !== this.lastMenu) {
      this.lastMenu = key;
      tray.setContextMenu(
        this.options.electron.Menu.buildFromTemplate(toTemplate(model, this.options.dispatch)),
      );
    }
    const state = trayState(forwards);
    if (state !== this.lastState) {
      this.lastState = state;
      tray.setImage(this.options.electron.nativeImage.createFromBuffer(trayPng(state)));
    }
    tray.setToolTip(trayTooltip(forwards));
  }
}

/** What running a tray action needs. */
export interface TrayActionTarget {
  api: Pick<BerthApi, 'call'>;
  settings: Pick<SettingsStore, 'update'>;
  showWindow: () => void;
  quit: () => void;
  /** Tells the user about a failure (a notification). */
  report: (message: string) => void;
}

/** Runs one tray action; failures are reported, never thrown (a click handler has no one to catch). */
export async function runTrayAction(action: TrayAction, target: TrayActionTarget): Promise<void> {
  try {
    switch (action.type) {
      case 'toggle':
        await target.api.call(action.enable ? 'enable' : 'disable', { id: action.id });
        return;
      case 'start-all':
      case 'stop-all': {
        const command = action.type === 'start-all' ? 'enable' : 'disable';
        const results = await Promise.allSettled(action.ids.map((id) => target.api.call(command, { id })));
        const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
        if (failed.length > 0) target.report(failed.join('\n'));
        return;
      }
      case 'open':
        target.showWindow();
        return;
      case 'quit':
        target.quit();
        return;
      case 'settings':
        await target.settings.update(action.change);
        return;
    }
  } catch (err) {
    target.report((err as Error).message);
  }
}
