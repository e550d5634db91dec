// An OpenID Connect provider on 127.0.0.1 for Legato's sign-in tests.
//
// One confidential client that must use PKCE (S256), a few accounts with a "groups" claim,
// and a sign-in form (user name and password) that a test drives over plain HTTP.
//
// Configuration from the environment:
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI  the one client
//   OIDC_PORT                                              0 (default): any free port
// Prints "listening ISSUER" once it serves; exits when its stdin closes (its parent is gone).

import { generateKeyPairSync, randomBytes } from "node:crypto";
import http from "node:http";

import Provider from "oidc-provider";

const ACCOUNTS = {
  ada: {
    password: "ada-password",
    claims: {
      preferred_username: "ada",
      name: "Ada Admin",
      email: "ada@example.test",
      email_verified: true,
      groups: ["legato-admins", "engineering"],
    },
  },
  otto: {
    password: "otto-password",
    claims: {
      preferred_username: "otto",
      name: "Otto Operator",
      email: "otto@example.test",
      email_verified: true,
      groups: ["data-ops", "analysts"],
    },
  },
  nora: {
    password: "nora-password",
    claims: {
      preferred_username: "nora",
      name: "Nora Nobody",
      email: "nora@example.test",
      email_verified: true,
      groups: ["marketing"],
    },
  },
};

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
};

const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const readForm = (req) =>
  new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => resolve(new URLSearchParams(body)));
    req.on("error", reject);
  });

const loginPage = (uid, message) => `<!doctype html>
<html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <input name="username" autocomplete="username">
  <input name="password" type="password" autocomplete="current-password">
  <button type="submit">Sign in</button>
</form>
</body></html>`;

let provider;

// The sign-in step: a form, then the account's grant for what the client asked (no consent
// screen: the one client is trusted by this provider's operator).
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(loginPage(details.uid, ""));
    return;
  }
  const form = await readForm(req);
  const name = form.get("username") || "";
  const account = Object.hasOwn(ACCOUNTS, name) ? ACCOUNTS[name] : undefined;
  if (!account || account.password !== form.get("password")) {
    res.writeHead(401, { "content-type": "text/html; charset=utf-8" });
    res.end(loginPage(details.uid, "Wrong user name or password."));
    return;
  }
  const grant = new provider.Grant({ accountId: name, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope || "openid"));
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: name }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/interaction/")) {
    interaction(req, res).catch((err) => {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end(`sign-in failed: ${err.message}`);
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(Number(process.env.OIDC_PORT || 0), "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
    format: "jwk",
  });
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: env("OIDC_CLIENT_ID"),
        client_secret: env("OIDC_CLIENT_SECRET"),
        redirect_uris: [env("OIDC_REDIRECT_URI")],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    pkce: { required: () => true },
    claims: {
      openid: ["sub"],
      profile: ["preferred_username", "name"],
      email: ["email", "email_verified"],
      groups: ["groups"],
    },
    scopes: ["openid"],
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    jwks: { keys: [{ ...signingKey, kid: "signing-1", use: "sig", alg: "RS256" }] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    async findAccount(_ctx, sub) {
      const account = Object.hasOwn(ACCOUNTS, sub) ? ACCOUNTS[sub] : undefined;
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account.claims }) };
    },
  });
  console.log(`listening ${issuer}`);
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
