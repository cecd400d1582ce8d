/**
 * The window's preload (sandboxed, context-isolated): exposes exactly one namespace, `window.berth`, whose
 * type (`BerthBridge`, app/api/bridge.ts) derives from the API contract. Nothing else from Electron or Node
 * reaches the page.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { createBridge } from './bridge.js';

contextBridge.exposeInMainWorld('berth', createBridge(ipcRenderer));
