/**
 * The fake `electron` module: the one fake the project allows (docs/architecture.md, "Tests"), because
 * Electron's binary cannot run on these machines. It implements only what main/ uses, records what main/ did, and behaves like
 * Electron where main/'s logic depends on it (preventDefault on events, `app.quit` emitting `before-quit`,
 * `ipcMain.handle` refusing a second handler, a handler's throw reaching the caller as "Error invoking remote
 * method"). main/ receives it through the seam in main/electron.ts; nothing is mocked at the module level
 * (Node 20 has no `--experimental-test-module-mocks`).
 */
import { EventEmitter } from 'node:events';
import type { MenuItemConstructorOptions, WebContents, WebFrameMain } from 'electron';
import type { ElectronMain } from '../../main/electron.js';

/** An Electron event: records preventDefault. */
export class FakeEvent {
  defaultPrevented = false;
  constructor(readonly url = '') {}
  preventDefault(): void {
    this.defaultPrevented = true;
  }
}

/** A frame: its URL and parent (null for a top frame). */
export class FakeFrame {
  constructor(
    public url: string,
    readonly parent: FakeFrame | null = null,
  ) {}
  get top(): FakeFrame {
    return this.parent ? this.parent.top : this;
  }
}

/** Views a fake frame as Electron's type, for calls into main/. */
export function asFrame(frame: FakeFrame | null): WebFrameMain | null {
  return frame as unknown as WebFrameMain | null;
}

let nextContentsId = 1;

/** A page's WebContents: records sends, keeps the window-open handler, emits navigation events. */
export class FakeWebContents extends EventEmitter {
  readonly id = nextContentsId++;
  readonly mainFrame: FakeFrame;
  readonly sent: { channel: string; args: unknown[] }[] = [];
  windowOpenHandler: ((details: { url: string }) => { action: string }) | undefined;
  /** The preload side, when a FakeIpcRenderer is attached: sends are delivered to it. */
  renderer: FakeIpcRenderer | undefined;
  private destroyed = false;

  constructor(url = '') {
    super();
    this.mainFrame = new FakeFrame(url);
  }

  send(channel: string, ...args: unknown[]): void {
    this.sent.push({ channel, args });
    this.renderer?.deliver(channel, args);
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
    this.windowOpenHandler = handler;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('destroyed');
  }
  /** Emits `event` as Electron does for navigation events; returns the event to check preventDefault. */
  fire(event: 'will-navigate' | 'will-redirect' | 'will-attach-webview', url: string): FakeEvent {
    const e = new FakeEvent(url);
    this.emit(event, e, url);
    return e;
  }
}

/** Views fake WebContents as Electron's type. */
export function asWebContents(contents: FakeWebContents): WebContents {
  return contents as unknown as WebContents;
}

type Handler = (event: unknown, ...args: unknown[]) => unknown;

/** ipcMain: `handle` keeps one handler per channel; `invoke`/`emitFrom` play the renderer's part. */
export class FakeIpcMain extends EventEmitter {
  readonly handlers = new Map<string, Handler>();

  handle(channel: string, handler: Handler): void {
    if (this.handlers.has(channel))
      throw new Error(`Attempted to register a second handler for '${channel}'`);
    this.handlers.set(channel, handler);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  /** What ipcRenderer.invoke does: a throw in the handler reaches the renderer as a generic Error. */
  async invoke(
    channel: string,
    sender: FakeWebContents,
    frame: FakeFrame | null,
    ...args: unknown[]
  ): Promise<unknown> {
    const handler = this.handlers.get(channel);
    if (!handler) throw new Error(`Error invoking remote method '${channel}': No handler registered`);
    try {
      return await handler({ sender, senderFrame: frame, processId: 1, frameId: 1 }, ...args);
    } catch (err) {
      throw new Error(`Error invoking remote method '${channel}': ${String(err)}`);
    }
  }
  /** What ipcRenderer.send does. */
  emitFrom(channel: string, sender: FakeWebContents, frame: FakeFrame | null, ...args: unknown[]): void {
    this.emit(channel, { sender, senderFrame: frame, processId: 1, frameId: 1 }, ...args);
  }
}

/** ipcRenderer of one page, wired to a FakeIpcMain as that page's frame. */
export class FakeIpcRenderer extends EventEmitter {
  constructor(
    private readonly ipcMain: FakeIpcMain,
    readonly contents: FakeWebContents,
    readonly frame: FakeFrame | null = contents.mainFrame,
  ) {
    super();
    contents.renderer = this;
  }
  invoke(channel: string, ...args: unknown[]): Promise<unknown> {
    return this.ipcMain.invoke(channel, this.contents, this.frame, ...args);
  }
  send(channel: string, ...args: unknown[]): void {
    this.ipcMain.emitFrom(channel, this.contents, this.frame, ...args);
  }
  deliver(channel: string, args: unknown[]): void {
    this.emit(channel, { sender: this }, ...args);
  }
}

/** Everything the fake records, in one ordered log for sequence checks. */
export interface FakeLog {
  calls: string[];
}

/** Builds a fresh fake Electron; each test gets its own, so nothing leaks between tests. */
export function createFakeElectron(options: { lock?: boolean } = {}) {
  const log: FakeLog = { calls: [] };

  class App extends EventEmitter {
    lock = options.lock ?? true;
    readonly exitCodes: number[] = [];
    readonly loginItems: unknown[] = [];
    requestSingleInstanceLock(): boolean {
      log.calls.push('app.requestSingleInstanceLock');
      return this.lock;
    }
    quit(): void {
      log.calls.push('app.quit');
      const event = new FakeEvent();
      this.emit('before-quit', event);
      if (!event.defaultPrevented) this.emit('will-quit', new FakeEvent());
    }
    exit(code = 0): void {
      log.calls.push(`app.exit(${code})`);
      this.exitCodes.push(code);
    }
    whenReady(): Promise<void> {
      return Promise.resolve();
    }
    setLoginItemSettings(settings: unknown): void {
      this.loginItems.push(settings);
    }
    /** Plays a second launch: Electron emits this in the first instance. */
    secondInstance(): void {
      this.emit('second-instance', new FakeEvent(), ['berth'], '/', {});
    }
  }
  const app = new App();

  const windows: FakeBrowserWindow[] = [];
  class FakeBrowserWindow extends EventEmitter {
    readonly webContents: FakeWebContents;
    url: string | undefined;
    visible = false;
    minimized = false;
    focused = false;
    private destroyed = false;
    constructor(readonly options: Electron.BrowserWindowConstructorOptions) {
      super();
      this.webContents = new FakeWebContents();
      windows.push(this);
      log.calls.push('new BrowserWindow');
      app.emit('web-contents-created', new FakeEvent(), this.webContents);
    }
    loadURL(url: string): Promise<void> {
      this.url = url;
      this.webContents.mainFrame.url = url;
      return Promise.resolve();
    }
    show(): void {
      this.visible = true;
      log.calls.push('window.show');
    }
    hide(): void {
      this.visible = false;
    }
    focus(): void {
      this.focused = true;
      log.calls.push('window.focus');
    }
    isMinimized(): boolean {
      return this.minimized;
    }
    minimize(): void {
      this.minimized = true;
      this.focused = false;
    }
    restore(): void {
      this.minimized = false;
      log.calls.push('window.restore');
    }
    isDestroyed(): boolean {
      return this.destroyed;
    }
    /** What the window's close button does. */
    close(): void {
      const event = new FakeEvent();
      this.emit('close', event);
      if (event.defaultPrevented) return;
      this.destroyed = true;
      this.webContents.destroy();
      this.emit('closed');
    }
  }

  interface FakeMenu {
    template: MenuItemConstructorOptions[];
  }
  const Menu = {
    buildFromTemplate(template: MenuItemConstructorOptions[]): FakeMenu {
      return { template };
    },
  };

  const trays: FakeTray[] = [];
  class FakeTray extends EventEmitter {
    menu: FakeMenu | undefined;
    image: unknown;
    tooltip = '';
    destroyed = false;
    menuBuilds = 0;
    constructor(image: unknown) {
      super();
      this.image = image;
      trays.push(this);
    }
    setContextMenu(menu: FakeMenu): void {
      this.menu = menu;
      this.menuBuilds += 1;
    }
    setImage(image: unknown): void {
      this.image = image;
    }
    setToolTip(tooltip: string): void {
      this.tooltip = tooltip;
    }
    destroy(): void {
      this.destroyed = true;
    }
  }

  const notifications: { title?: string; body?: string }[] = [];
  class FakeNotification {
    static supported = true;
    static isSupported(): boolean {
      return FakeNotification.supported;
    }
    constructor(private readonly options: { title?: string; body?: string }) {}
    show(): void {
      notifications.push(this.options);
    }
  }

  const protocol = {
    privileged: [] as unknown[],
    handlers: new Map<string, (request: Request) => Response | Promise<Response>>(),
    registerSchemesAsPrivileged(schemes: unknown[]): void {
      this.privileged.push(...schemes);
    },
    handle(scheme: string, handler: (request: Request) => Response | Promise<Response>): void {
      this.handlers.set(scheme, handler);
    },
  };

  type HeadersListener = (
    details: { responseHeaders?: Record<string, string[]> },
    callback: (response: { responseHeaders?: Record<string, string[]> }) => void,
  ) => void;
  type PermissionRequest = (
    contents: unknown,
    permission: string,
    callback: (granted: boolean) => void,
  ) => void;
  interface FakeSession {
    headersListener: HeadersListener | undefined;
    permissionRequest: PermissionRequest | undefined;
    permissionCheck: ((...args: unknown[]) => boolean) | undefined;
    webRequest: { onHeadersReceived(listener: HeadersListener): void };
    setPermissionRequestHandler(handler: PermissionRequest): void;
    setPermissionCheckHandler(handler: (...args: unknown[]) => boolean): void;
  }
  const defaultSession: FakeSession = {
    headersListener: undefined,
    permissionRequest: undefined,
    permissionCheck: undefined,
    webRequest: {
      onHeadersReceived(listener) {
        defaultSession.headersListener = listener;
      },
    },
    setPermissionRequestHandler(handler) {
      defaultSession.permissionRequest = handler;
    },
    setPermissionCheckHandler(handler) {
      defaultSession.permissionCheck = handler;
    },
  };

  const opened: string[] = [];
  const shell = {
    openExternal(url: string): Promise<void> {
      opened.push(url);
      return Promise.resolve();
    },
  };
  const errorBoxes: { title: string; content: string }[] = [];
  const dialog = {
    showErrorBox(title: string, content: string): void {
      errorBoxes.push({ title, content });
    },
  };
  const nativeImage = {
    createFromBuffer(buffer: Buffer): { png: Buffer } {
      return { png: buffer };
    },
  };
  const ipcMain = new FakeIpcMain();
  // Electron's powerMonitor is an EventEmitter ('suspend', 'resume', ...); tests emit on it.
  const powerMonitor = new EventEmitter();

  const fake = {
    app,
    BrowserWindow: FakeBrowserWindow,
    dialog,
    ipcMain,
    Menu,
    nativeImage,
    Notification: FakeNotification,
    powerMonitor,
    protocol,
    session: { defaultSession },
    shell,
    Tray: FakeTray,
  };
  return {
    /** What main/ receives. */
    electron: fake as unknown as ElectronMain,
    fake,
    log,
    windows,
    trays,
    notifications,
    opened,
    errorBoxes,
  };
}

/** The fake of one test. */
export type FakeElectron = ReturnType<typeof createFakeElectron>;

/** Finds a menu item by label, depth first. */
export function menuItem(
  template: readonly MenuItemConstructorOptions[] | undefined,
  label: string,
): MenuItemConstructorOptions | undefined {
  for (const item of template ?? []) {
    if (item.label === label) return item;
    const inner = Array.isArray(item.submenu) ? menuItem(item.submenu, label) : undefined;
    if (inner) return inner;
  }
  return undefined;
}
