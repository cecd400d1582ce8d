/** Renders the whole app over a FakeTransport, as the browser page does over the WebSocket. */
import { act, render, type RenderResult } from '@testing-library/react';
import type { ForwardStatus } from '../../app/api/contract.js';
import { App } from '../src/components/App.js';
import { ForwardStore } from '../src/store.js';
import { FakeTransport } from './fake-transport.js';

/** What a test gets back: the rendered app, its store and its transport. */
export interface RenderedApp extends RenderResult {
  store: ForwardStore;
  transport: FakeTransport;
}

/** Renders <App> with `forwards` as the engine's snapshot. */
export function renderApp(forwards: ForwardStatus[] = []): RenderedApp {
  const transport = new FakeTransport(forwards);
  const store = new ForwardStore();
  const disconnect = store.connect(transport, 60_000);
  const result = render(<App store={store} transport={transport} />);
  const unmount = result.unmount;
  return {
    ...result,
    unmount: () => {
      unmount();
      disconnect();
    },
    store,
    transport,
  };
}

/** Pushes an event inside act(), so React has re-rendered when it returns. */
export function push(rendered: RenderedApp, event: Parameters<FakeTransport['emit']>[0]): void {
  act(() => rendered.transport.emit(event));
}
