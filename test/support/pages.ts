/** Page objects of the Berth UI, found only by the accessible names docs/ui.md promises. */
import type { Locator, Page } from 'playwright-core';
import { until as untilFor } from './index.js';

/** The shared `until`, with the 10 s a browser round trip may take. */
export const until = <T>(check: () => T | Promise<T>, what: string, limitMs = 10_000) =>
  untilFor(check, what, limitMs);

/** The main window: the Forwards table, its rows and switches. */
export class ForwardsPage {
  constructor(readonly page: Page) {}

  get addButton(): Locator {
    return this.page.getByRole('button', { name: 'Add forward', exact: true });
  }

  get table(): Locator {
    return this.page.getByRole('table', { name: 'Forwards' });
  }

  /** The switch named "Toggle ID". */
  toggle(id: string): Locator {
    return this.page.getByRole('switch', { name: `Toggle ${id}`, exact: true });
  }

  /** The table row that holds the forward's switch. */
  row(id: string): Locator {
    return this.table.getByRole('row').filter({ has: this.toggle(id) });
  }

  /** Waits for the row to show `word` (Listening, Stopped, Starting, Error, or a backend state). */
  async expectState(id: string, word: string | RegExp): Promise<void> {
    await until(
      async () => {
        const text = await this.row(id).innerText();
        return typeof word === 'string' ? text.includes(word) : word.test(text);
      },
      `forward ${id} to show ${String(word)}`,
    );
  }

  async openAdd(): Promise<ForwardFormPage> {
    await this.addButton.click();
    const form = new ForwardFormPage(this.page);
    await form.field('ID').waitFor();
    return form;
  }

  /** Opens the detail view from the row's name. */
  async openDetail(id: string): Promise<DetailPage> {
    await this.row(id).getByRole('rowheader').getByRole('button').click();
    const detail = new DetailPage(this.page);
    await detail.backButton.waitFor();
    return detail;
  }
}

/** The add/edit form. */
export class ForwardFormPage {
  constructor(readonly page: Page) {}

  field(label: string): Locator {
    return this.page.getByLabel(label, { exact: true });
  }

  async fill(values: Record<string, string>): Promise<void> {
    for (const [label, value] of Object.entries(values)) {
      const field = this.field(label);
      if ((await field.evaluate((node) => node.tagName)) === 'SELECT') await field.selectOption(value);
      else await field.fill(value);
    }
  }

  async save(): Promise<void> {
    await this.page.getByRole('button', { name: 'Save', exact: true }).click();
  }

  /** The problem shown next to a field: the text of what its aria-describedby points at that is a problem. */
  async problem(label: string): Promise<string> {
    const field = this.field(label);
    if ((await field.getAttribute('aria-invalid')) !== 'true') return '';
    const ids = ((await field.getAttribute('aria-describedby')) ?? '').split(/\s+/).filter(Boolean);
    const texts = await Promise.all(ids.map((id) => this.page.locator(`[id="${id}"]`).innerText()));
    return texts.join(' ');
  }
}

/** One forward's detail view. */
export class DetailPage {
  constructor(readonly page: Page) {}

  get backButton(): Locator {
    return this.page.getByRole('button', { name: '← Back to forwards' });
  }

  /** The value next to a term of the detail's lists (e.g. "Bytes to target"). */
  value(term: string): Locator {
    return this.page
      .locator('dl > div')
      .filter({ has: this.page.locator('dt').getByText(term, { exact: true }) })
      .locator('dd');
  }

  async back(): Promise<ForwardsPage> {
    await this.backButton.click();
    return new ForwardsPage(this.page);
  }
}
