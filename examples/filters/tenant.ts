/**
 * A synchronous user filter: the tenant is the first label of the Host
 * (`acme.example.com` → `acme`). Known tenants go upstream with the tenant in
 * a header; others get 404 without reaching a backend. Responses say which
 * tenant served them.
 *
 *   filters:
 *     - module: ./filters/tenant.ts
 *       options: { tenants: [acme, globex], header: x-tenant }
 */
import { defineFilter, z } from 'usher';

export default defineFilter({
  name: 'tenant',
  options: z.strictObject({
    tenants: z.array(z.string().regex(/^[a-z0-9-]+$/)).min(1),
    header: z.string().default('x-tenant'),
  }),
  create({ tenants, header }) {
    const known = new Set(tenants);
    return {
      onRequest(request) {
        const tenant = request.host?.split('.')[0]?.toLowerCase();
        if (tenant === undefined || !known.has(tenant)) {
          return { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'unknown tenant\n' };
        }
        // A client's own copy of the header is replaced: only this filter decides the tenant.
        request.setHeader(header, tenant);
        return undefined;
      },
      onResponse(response, request) {
        const tenant = request.header(header);
        if (tenant !== undefined) response.setHeader('x-served-tenant', tenant);
      },
    };
  },
});
