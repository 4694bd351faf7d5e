import { it } from 'vitest';
import { harness } from './helpers.js';
it('routes', async () => {
  const h = await harness();
  console.log(h.srv.routes.length + '\n' + h.srv.routes.map((r) => `${r.method} ${r.url} ${r.auth}`).join('\n'));
  await h.close();
});
