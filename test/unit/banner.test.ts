import { startupBanner } from '../../src/banner';
import { loadConfig } from '../../src/config';

const where = { apiUrl: 'http://127.0.0.1:3000', uiUrl: 'http://127.0.0.1:8233', devServer: true };

describe('the startup banner', () => {
  it('prints both development tokens, saying they are public, when neither is set', () => {
    const text = startupBanner(loadConfig({}), where);
    expect(text).toMatch(/Admin token: +dev-admin-token +\(public development token: set INVENTORY_ADMIN_TOKEN/);
    expect(text).toMatch(/Client token: +dev-api-token +\(public development token: set INVENTORY_API_TOKEN/);
  });

  it('never prints configured tokens', () => {
    const config = loadConfig({
      INVENTORY_ADMIN_TOKEN: 'admin-token-of-the-shop',
      INVENTORY_API_TOKEN: 'client-token-of-the-shop',
    });
    const text = startupBanner(config, where);
    expect(text).not.toMatch(/token-of-the-shop/);
    expect(text).toMatch(/Admin token: +from INVENTORY_ADMIN_TOKEN/);
  });

  it('shows the Web UI of a server it did not start only when TEMPORAL_UI_URL names it', () => {
    const without = startupBanner(loadConfig({}), { apiUrl: where.apiUrl, devServer: false });
    expect(without).not.toMatch(/Web UI/);
    const config = loadConfig({ TEMPORAL_UI_URL: 'https://temporal.example.com/' });
    const withUi = startupBanner(config, { apiUrl: where.apiUrl, uiUrl: config.temporalUiUrl, devServer: false });
    expect(withUi).toContain('Temporal Web UI:  https://temporal.example.com/namespaces/default/workflows');
    expect(withUi).not.toContain('(the Web UI of your Temporal server)');
  });
});
