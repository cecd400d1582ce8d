/** React bindings of the store: components read pushed state through useSyncExternalStore. */
import { createContext, useContext, useSyncExternalStore } from 'react';
import type { ForwardStore, StoreState } from './store.js';
import type { Transport } from './transport.js';

/** What every component can reach: the store to read and the transport to send commands. */
export interface BerthContext {
  store: ForwardStore;
  transport: Transport;
}

/** Provided once by <App>. */
export const Berth = createContext<BerthContext | null>(null);

/** The store and transport of the surrounding <App>. */
export function useBerth(): BerthContext {
  const context = useContext(Berth);
  if (!context) throw new Error('useBerth needs a <Berth.Provider>');
  return context;
}

/** The store's current state; re-renders when it changes. */
export function useStoreState(): StoreState {
  const { store } = useBerth();
  return useSyncExternalStore(store.subscribe, store.getSnapshot);
}
