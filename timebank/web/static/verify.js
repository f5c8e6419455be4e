// Checking receipts and certificates in the browser, trusting nobody's server.
//
// A faithful port of timebank/log/verify.py (the one definition of the rules; read it
// and docs/receipts.md): RFC 8785 (JCS) canonical JSON, RFC 6962 leaf and node hashes
// and inclusion proofs, C2SP signed-note checkpoints, RFC 8037/7638 JWK keys, Ed25519
// signatures of the signed entry timestamp ("set") and of certificates. It checks what
// verify.py checks, in the same way, and shows it as four steps:
//   1. the set's Ed25519 signature by the published key its kid names;
//   2. the leaf hash recomputed from the canonical transaction equals the receipt's
//      (and the set was signed for that leaf, transaction and community);
//   3. the inclusion proof leads to the root of the receipt's checkpoint (of the log the
//      set names, of the proof's size);
//   4. the checkpoint's signature by a published key.
// Ed25519: the browser's WebCrypto where it has it, else the vendored noble-ed25519
// (data-engine="noble" or ?engine=noble forces it). Every word shown comes from the
// page (<template id="verify-words">, rendered with gettext); none is written here.

const WORDS = document.getElementById('verify-words');
const HASH_SIZE = 32;
const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1, as verify.py's MAX_SAFE_INTEGER
const EM_DASH = '\u2014 ';
const STEPS = ['signature', 'leaf', 'inclusion', 'checkpoint'];
const ENGINES = ['auto', 'webcrypto', 'noble'];

// --- words -------------------------------------------------------------------------------

function say(key, values = {}) {
  const el = WORDS && WORDS.content.querySelector(`[data-w="${key}"]`);
  const text = el ? el.textContent.trim() : key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

class VerificationError extends Error {
  constructor(key, values = {}) {
    super(key);
    this.key = key;
    this.values = values;
  }
  get words() {
    return say(this.key, this.values);
  }
}

// --- JSON as Python reads it -------------------------------------------------------------
// verify.py gets its values from Python's json module: a number with a fraction or an
// exponent is a float, which JCS refuses. JSON.parse would make 90.0 the integer 90, so
// the text is parsed here, keeping floats apart (and integers beyond 2^53 exact).

class Float {
  constructor(text) {
    this.text = text;
  }
}

function parseJson(text) {
  let i = 0;
  const fail = () => {
    throw new VerificationError('not-json');
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = Object.create(null);
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        const k = string();
        ws();
        if (text[i++] !== ':') fail();
        obj[k] = value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail();
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail();
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail();
    i += m[0].length;
    if (m[2] || m[3]) return new Float(m[0]);
    const n = Number(m[0]);
    return Number.isSafeInteger(n) ? n : BigInt(m[0]);
  };
  const string = () => {
    // from an opening quote: JSON.parse does the escapes exactly
    let j = i + 1;
    for (; j < text.length; j++) {
      const ch = text[j];
      if (ch === '\\') j++;
      else if (ch === '"') break;
      else if (ch < ' ') fail();
    }
    if (j >= text.length) fail();
    let s;
    try {
      s = JSON.parse(text.slice(i, j + 1));
    } catch {
      fail();
    }
    i = j + 1;
    return s;
  };
  const v = value();
  ws();
  if (i !== text.length) fail();
  return v;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Float);
const get = (obj, key) => (isObject(obj) && key in obj ? obj[key] : null); // Python's dict.get
const isInt = (v) => (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';

// Python equality of JSON values (what verify.py's == compares)
function same(a, b) {
  if (isInt(a) && isInt(b)) return BigInt(a) === BigInt(b);
  if (a instanceof Float || b instanceof Float) return a instanceof Float && b instanceof Float && Number(a.text) === Number(b.text);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, k) => same(v, b[k]));
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && same(a[k], b[k]));
  }
  return a === b;
}

// --- encodings -----------------------------------------------------------------------------

const utf8 = (s) => new TextEncoder().encode(s);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((v, k) => v === b[k]);
}

function b64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// Strict standard base64 (padding required, no stray characters), as verify.py's unb64.
function unb64(text, what) {
  if (typeof text !== 'string') throw new VerificationError('not-base64', { what });
  if (!B64.test(text)) throw new VerificationError('not-base64', { what });
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function b64url(bytes) {
  return b64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function unb64url(text) {
  const s = text.replace(/-/g, '+').replace(/_/g, '/');
  try {
    return Uint8Array.from(atob(s + '='.repeat((4 - (s.length % 4)) % 4)), (c) => c.charCodeAt(0));
  } catch {
    throw new VerificationError('not-base64', { what: 'x' });
  }
}

// RFC 8785 canonical JSON. JavaScript sorts strings by UTF-16 code units, as JCS does;
// JSON.stringify escapes strings exactly as JCS says. Floats and integers beyond ±2^53
// are refused, as verify.py refuses them.
function jcsText(v) {
  if (v === null || v === true || v === false) return JSON.stringify(v);
  if (typeof v === 'string') {
    const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(v);
    if (lone) {
      const code = lone[0].charCodeAt(0).toString(16).toUpperCase();
      throw new VerificationError('not-canonical', { what: 'U+' + code });
    }
    return JSON.stringify(v);
  }
  if (isInt(v)) {
    if (BigInt(v) > BigInt(MAX_SAFE) || BigInt(v) < -BigInt(MAX_SAFE)) {
      throw new VerificationError('not-canonical', { what: String(v) });
    }
    return String(v);
  }
  if (v instanceof Float) throw new VerificationError('not-canonical', { what: v.text });
  if (Array.isArray(v)) return '[' + v.map(jcsText).join(',') + ']';
  if (isObject(v)) {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + jcsText(v[k])).join(',') + '}';
  }
  throw new VerificationError('not-canonical', { what: typeof v });
}

const jcs = (v) => utf8(jcsText(v));

// --- hashing -------------------------------------------------------------------------------

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) throw new VerificationError('insecure');
  return s;
}

async function sha256(data) {
  return new Uint8Array(await subtle().digest('SHA-256', data));
}

const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

// --- RFC 6962 inclusion proofs (transparency-dev/merkle, as verify.py) -----------------------

function hashes(values, what) {
  if (values === null || values === undefined) return [];
  if (!Array.isArray(values)) throw new VerificationError('not-list', { what });
  const out = values.map((v) => (typeof v === 'string' ? unb64(v, what) : v));
  for (const h of out) {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw new VerificationError('not-hash', { what });
  }
  return out;
}

const bitLength = (n) => (n === 0n ? 0 : n.toString(2).length);
const popcount = (n) => [...n.toString(2)].filter((c) => c === '1').length;

function decompose(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return [inner, popcount(index >> BigInt(inner))];
}

function checkSize(value, what) {
  if (!isInt(value) || BigInt(value) < 0n || BigInt(value) >= 2n ** 64n) {
    throw new VerificationError('not-size', { what });
  }
  return BigInt(value);
}

async function rootFromInclusion(indexValue, sizeValue, leaf, proof) {
  const index = checkSize(indexValue, 'log.index');
  const size = checkSize(sizeValue, 'log.tree_size');
  if (index >= size) throw new VerificationError('index-outside', { index, size });
  if (leaf.length !== HASH_SIZE) throw new VerificationError('leaf-size');
  const path = hashes(proof, 'log.inclusion_proof');
  const [inner, border] = decompose(index, size);
  if (path.length !== inner + border) {
    throw new VerificationError('proof-length', { n: path.length, index, size, m: inner + border });
  }
  let seed = leaf;
  for (let i = 0; i < inner; i++) {
    seed = ((index >> BigInt(i)) & 1n) === 0n ? await nodeHash(seed, path[i]) : await nodeHash(path[i], seed);
  }
  for (const h of path.slice(inner)) seed = await nodeHash(h, seed);
  return seed;
}

// --- Ed25519 ---------------------------------------------------------------------------------

// RFC 8032 section 7.1, test 1: a known-good signature, to learn whether WebCrypto has Ed25519.
const PROBE_KEY = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const PROBE_SIG =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
const hex = (s) => Uint8Array.from(s.match(/../g), (h) => parseInt(h, 16));

async function webcryptoVerify(publicKey, signature, message) {
  const key = await subtle().importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  return subtle().verify({ name: 'Ed25519' }, key, signature, message);
}

const ENGINE = {
  chosen: null,
  async pick(wanted, nobleUrl) {
    if (this.chosen) return this.chosen;
    this.chosen = (async () => {
      subtle(); // hashing needs WebCrypto in every case (an HTTPS page, or localhost)
      if (wanted !== 'noble') {
        try {
          if (await webcryptoVerify(hex(PROBE_KEY), hex(PROBE_SIG), new Uint8Array(0))) {
            return { name: 'webcrypto', verify: webcryptoVerify };
          }
        } catch {
          // no Ed25519 in this browser's WebCrypto
        }
        if (wanted === 'webcrypto') throw new VerificationError('no-webcrypto');
      }
      const noble = await import(nobleUrl);
      // zip215: false = RFC 8032 / FIPS 186-5 strict checks, as OpenSSL (verify.py's cryptography)
      const verify = async (publicKey, signature, message) =>
        noble.verifyAsync(signature, message, publicKey, { zip215: false });
      return { name: 'noble', verify };
    })();
    return this.chosen;
  },
};

let engine = null; // the picked engine, for ed25519Verify

async function ed25519Verify(publicKey, signature, message) {
  try {
    return (await engine.verify(publicKey, signature, message)) === true;
  } catch {
    return false; // a malformed key or signature is not a valid signature (as verify.py)
  }
}

// --- keys ------------------------------------------------------------------------------------

async function jwkThumbprint(publicKey) {
  return b64url(await sha256(jcs({ crv: 'Ed25519', kty: 'OKP', x: b64url(publicKey) })));
}

// A JWK set → Map(kid → 32-byte public key); each kid must be its key's thumbprint.
async function loadJwks(jwks) {
  if (!isObject(jwks) || !Array.isArray(get(jwks, 'keys'))) throw new VerificationError('keys-not-set');
  const keys = new Map();
  for (const jwk of jwks.keys) {
    if (!isObject(jwk) || get(jwk, 'kty') !== 'OKP' || get(jwk, 'crv') !== 'Ed25519') continue;
    const x = get(jwk, 'x');
    const raw = unb64url(x === null ? '' : String(x));
    if (raw.length !== 32) throw new VerificationError('key-x');
    const kid = await jwkThumbprint(raw);
    if ('kid' in jwk && !same(jwk.kid, kid)) throw new VerificationError('key-kid', { kid: String(jwk.kid), thumb: kid });
    keys.set(kid, raw);
  }
  if (keys.size === 0) throw new VerificationError('no-keys');
  return keys;
}

// --- checkpoints (C2SP tlog-checkpoint in a C2SP signed-note) ----------------------------------

// The body: origin, size, root (verify.py's verify_checkpoint up to its signatures).
function parseCheckpoint(text, origin) {
  if (typeof text !== 'string' || !text.includes('\n\n') || !text.endsWith('\n')) {
    throw new VerificationError('cp-not-note');
  }
  const cut = text.lastIndexOf('\n\n');
  const body = text.slice(0, cut) + '\n';
  const signatures = text.slice(cut + 2);
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3 || !lines[0] || !/^(0|[1-9][0-9]{0,19})$/.test(lines[1])) {
    throw new VerificationError('cp-body');
  }
  const root = unb64(lines[2], 'log.checkpoint');
  if (root.length !== HASH_SIZE) throw new VerificationError('cp-root');
  if (origin !== null && lines[0] !== origin) throw new VerificationError('cp-other-log', { origin: lines[0] });
  return { origin: lines[0], size: BigInt(lines[1]), root, body, signatures };
}

async function noteKeyId(name, publicKey) {
  return (await sha256(concat(utf8(name), Uint8Array.of(0x0a, 0x01), publicKey))).slice(0, 4);
}

// One signature by a known key over the body: the kid of the key (the last that verifies).
async function checkpointSigner(cp, keys) {
  let signer = '';
  for (const line of cp.signatures.slice(0, -1).split('\n')) {
    const parts = line.startsWith(EM_DASH) ? line.slice(EM_DASH.length).split(' ') : [];
    if (parts.length !== 2) throw new VerificationError('cp-bad-line');
    const [name, blob] = [parts[0], unb64(parts[1], 'log.checkpoint')];
    if (name !== cp.origin || blob.length !== 4 + 64) continue; // a witness or another signer
    for (const [kid, key] of keys) {
      if (equalBytes(await noteKeyId(name, key), blob.slice(0, 4)) && (await ed25519Verify(key, blob.slice(4), utf8(cp.body)))) {
        signer = kid;
      }
    }
  }
  if (!signer) throw new VerificationError('cp-unsigned', { size: cp.size });
  return signer;
}

// --- receipts ----------------------------------------------------------------------------------

async function verifySet(set, keys) {
  if (!isObject(set) || !isObject(get(set, 'payload'))) throw new VerificationError('no-set');
  const kid = String(pyStr(get(set, 'kid')));
  const key = keys.get(kid);
  if (key === undefined) throw new VerificationError('unknown-key', { kid });
  if (!(await ed25519Verify(key, unb64(get(set, 'signature'), 'set.signature'), jcs(set.payload)))) {
    throw new VerificationError('bad-signature');
  }
  return { payload: set.payload, kid };
}

// str() of a JSON value as Python prints it, for a kid that is not a string (None → 'None')
function pyStr(v) {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  return typeof v === 'string' ? v : jcsTextLoose(v);
}

function jcsTextLoose(v) {
  try {
    return jcsText(v);
  } catch {
    return '?';
  }
}

// The four steps of a receipt. ``report(step, state, words)`` is called as each ends;
// returns 'ok', 'pending' (not in the log yet) or 'fail'.
async function checkReceipt(receipt, keys, report) {
  let current = 0;
  const pass = (words) => report(STEPS[current++], 'pass', words);
  try {
    if (!isObject(receipt) || !isObject(get(receipt, 'transaction'))) throw new VerificationError('not-receipt');
    const tx = receipt.transaction;
    // 1. the bank's signature (the set) by a published key
    const { payload, kid } = await verifySet(get(receipt, 'set'), keys);
    pass(say('pass-signature', { kid }));
    // 2. the leaf hash from the canonical transaction; the set is for it
    const leaf = await leafHash(jcs(tx));
    if (!equalBytes(unb64(get(receipt, 'leaf_hash'), 'leaf_hash'), leaf)) throw new VerificationError('leaf-mismatch');
    if (!same(get(payload, 'leaf_hash'), b64(leaf))) throw new VerificationError('set-other-leaf');
    const txId = get(tx, 'id');
    const signedFor = 'transaction_id' in payload ? payload.transaction_id : txId;
    if (!same(get(payload, 'community_id'), get(tx, 'community_id')) || !same(signedFor, txId)) {
      throw new VerificationError('set-other-tx');
    }
    pass(say('pass-leaf', { leaf: b64(leaf) }));
    // 3. the inclusion proof to the root of the receipt's checkpoint
    const log = 'log' in receipt ? receipt.log : null;
    if (log === null) {
      report('inclusion', 'skip', say('not-in-log'));
      report('checkpoint', 'skip', say('skip-pending'));
      return 'pending';
    }
    if (!isObject(log)) throw new VerificationError('log-malformed');
    const origin = get(payload, 'log_origin');
    const cp = parseCheckpoint(get(log, 'checkpoint'), typeof origin === 'string' ? origin : null);
    const index = get(log, 'index');
    const size = get(log, 'tree_size');
    if (!isInt(size) || BigInt(size) !== cp.size) {
      throw new VerificationError('size-mismatch', { size: pyStr(size), cpsize: cp.size });
    }
    const root = await rootFromInclusion(index, size, leaf, get(log, 'inclusion_proof'));
    if (!equalBytes(root, cp.root)) throw new VerificationError('proof-mismatch', { index, size });
    pass(say('pass-inclusion', { n: BigInt(index) + 1n, size, root: b64(cp.root) }));
    // 4. the checkpoint's signature by a published key
    const signer = await checkpointSigner(cp, keys);
    pass(say('pass-checkpoint', { size: cp.size, kid: signer }));
    return 'ok';
  } catch (e) {
    const words = e instanceof VerificationError ? e.words : say('internal', { why: String(e && e.message) });
    report(STEPS[current] || STEPS[0], 'fail', words);
    for (const step of STEPS.slice(current + 1)) report(step, 'skip', say('skip-detail'));
    return 'fail';
  }
}

// A certificate of service: Ed25519 by a published key over JCS(certificate).
async function checkCertificate(signed, keys) {
  if (!isObject(signed) || !isObject(get(signed, 'certificate'))) throw new VerificationError('cert-not');
  const cert = signed.certificate;
  const kid = String(pyStr(get(signed, 'kid')));
  const key = keys.get(kid);
  if (key === undefined) throw new VerificationError('unknown-key', { kid });
  if (!(await ed25519Verify(key, unb64(get(signed, 'signature'), 'signature'), jcs(cert)))) {
    throw new VerificationError('cert-bad-signature');
  }
  return { cert, kid };
}

// --- fetching --------------------------------------------------------------------------------

let keysPromise = null;

function settings() {
  const d = WORDS ? WORDS.dataset : {};
  const asked = new URLSearchParams(location.search).get('engine');
  return {
    keysUrl: d.keysUrl || '/v1/log/keys',
    nobleUrl: d.noble,
    nobleVersion: d.nobleVersion || '',
    engine: ENGINES.includes(asked) ? asked : ENGINES.includes(d.engine) ? d.engine : 'auto',
  };
}

async function fetchJson(url, what) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  } catch {
    throw new VerificationError('fetch-failed', { what });
  }
  if (response.status === 404) return { missing: true };
  if (!response.ok) throw new VerificationError('fetch-failed', { what });
  return { value: parseJson(await response.text()) };
}

async function prepare() {
  const s = settings();
  engine = await ENGINE.pick(s.engine, s.nobleUrl);
  if (!keysPromise) {
    keysPromise = (async () => {
      const got = await fetchJson(s.keysUrl, s.keysUrl);
      if (got.missing) throw new VerificationError('fetch-failed', { what: s.keysUrl });
      return loadJwks(got.value);
    })();
    keysPromise.catch(() => {
      keysPromise = null; // try again on the next check
    });
  }
  return keysPromise;
}

function engineWords() {
  return engine && engine.name === 'noble'
    ? say('engine-noble', { version: settings().nobleVersion })
    : say('engine-webcrypto');
}

// --- the verifier page -----------------------------------------------------------------------

function show(el, on) {
  if (el) el.hidden = !on;
}

function setStep(li, state, words) {
  li.dataset.state = state;
  li.querySelector('.step-icon').textContent = { pass: '✓', fail: '✗', skip: '–', wait: '…' }[state];
  li.querySelector('.step-state').textContent = say('state-' + state);
  li.querySelector('.step-detail').textContent = words || '';
}

function verifierPage(root) {
  const form = root.querySelector('#verify-form');
  const text = root.querySelector('#receipt-text');
  const file = root.querySelector('#receipt-file');
  const number = root.querySelector('#certificate');
  const result = root.querySelector('#verify-result');
  const summary = root.querySelector('#verify-summary');
  const steps = root.querySelector('#verify-steps');
  const certView = root.querySelector('#certificate-view');
  const engineLine = root.querySelector('#verify-engine');
  const busy = root.querySelector('#verify-check');
  root.querySelectorAll('[data-needs-js]').forEach((el) => show(el, true));

  // What was typed, chosen or pasted last is what is checked.
  let prefer = null;
  text.addEventListener('input', () => {
    prefer = 'text';
  });
  number.addEventListener('input', () => {
    prefer = 'number';
  });
  file.addEventListener('change', async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    text.value = await chosen.text();
    prefer = 'text';
  });

  function begin(kind) {
    show(result, true);
    summary.className = 'verify-summary';
    summary.textContent = say('checking');
    certView.replaceChildren();
    show(certView, false);
    const names = kind === 'certificate' ? ['certificate'] : STEPS;
    steps.replaceChildren(
      ...names.map((step) => {
        const li = document.createElement('li');
        li.className = 'verify-step';
        li.dataset.step = step;
        const icon = document.createElement('span');
        icon.className = 'step-icon';
        icon.setAttribute('aria-hidden', 'true');
        const name = document.createElement('strong');
        name.className = 'step-name';
        name.textContent = say('step-' + step);
        const state = document.createElement('span');
        state.className = 'step-state';
        const head = document.createElement('p');
        head.className = 'step-head';
        head.append(icon, name, state);
        const detail = document.createElement('p');
        detail.className = 'step-detail';
        li.append(head, detail);
        setStep(li, 'wait', '');
        return li;
      }),
    );
    return (step, state, words) => setStep(steps.querySelector(`[data-step="${step}"]`), state, words);
  }

  function finish(state, words) {
    summary.className = 'verify-summary ' + state;
    summary.textContent = words;
    engineLine.textContent = engine ? engineWords() : '';
    summary.focus();
  }

  function fact(dl, label, value) {
    const dt = document.createElement('dt');
    dt.textContent = say(label);
    const dd = document.createElement('dd');
    dd.textContent = value;
    dl.append(dt, dd);
  }

  // An RFC 3339 time as a date of the community's zone, in the page's language.
  function localDate(iso) {
    const when = new Date(iso);
    if (!iso || Number.isNaN(when.getTime())) return iso;
    try {
      const options = { dateStyle: 'medium', timeZone: root.dataset.timezone || undefined };
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined, options).format(when);
    } catch {
      return iso.slice(0, 10);
    }
  }

  function showCertificate(cert) {
    const h = document.createElement('h3');
    h.textContent = say('cert-title');
    const dl = document.createElement('dl');
    dl.className = 'facts';
    const str = (v) => (typeof v === 'string' || isInt(v) ? String(v) : '');
    fact(dl, 'cert-number', str(get(cert, 'number')));
    fact(dl, 'cert-volunteer', str(get(get(cert, 'volunteer'), 'name')));
    const period = get(cert, 'period');
    fact(dl, 'cert-period', say('cert-period-value', { start: str(get(period, 'from')), end: str(get(period, 'to')) }));
    fact(dl, 'cert-hours', say('cert-hours-value', { hours: str(get(cert, 'total_hours')) }));
    const activities = get(cert, 'activities');
    fact(dl, 'cert-activities', String(Array.isArray(activities) ? activities.length : 0));
    fact(dl, 'cert-issuer', str(get(cert, 'issuer')));
    fact(dl, 'cert-issued', localDate(str(get(cert, 'issued_at'))));
    certView.replaceChildren(h, dl);
    show(certView, true);
  }

  async function runCertificate(signed) {
    const report = begin('certificate');
    try {
      const keys = await prepare();
      if (isObject(signed) && isObject(get(signed, 'certificate'))) showCertificate(signed.certificate);
      const { kid } = await checkCertificate(signed, keys);
      report('certificate', 'pass', say('pass-certificate', { kid }));
      finish('ok', say('cert-ok'));
    } catch (e) {
      const words = e instanceof VerificationError ? e.words : say('internal', { why: String(e && e.message) });
      report('certificate', 'fail', words);
      finish('fail', say('cert-fail', { why: words }));
    }
  }

  async function runReceipt(receipt) {
    const report = begin('receipt');
    let failed = null;
    let keys;
    try {
      keys = await prepare();
    } catch (e) {
      const words = e instanceof VerificationError ? e.words : say('internal', { why: String(e && e.message) });
      report('signature', 'fail', words);
      STEPS.slice(1).forEach((s) => report(s, 'skip', say('skip-detail')));
      finish('fail', words);
      return;
    }
    const outcome = await checkReceipt(receipt, keys, (step, state, words) => {
      if (state === 'fail') failed = step;
      report(step, state, words);
    });
    if (outcome === 'ok') finish('ok', say('sum-ok'));
    else if (outcome === 'pending') finish('pending', say('sum-pending'));
    else finish('fail', say('sum-fail', { step: say('step-' + failed) }));
  }

  async function run() {
    busy.disabled = true;
    try {
      const pasted = text.value.trim();
      const asked = number.value.trim().toUpperCase();
      if (pasted && !(prefer === 'number' && asked)) {
        let value;
        try {
          value = parseJson(pasted);
        } catch (e) {
          begin('receipt');
          steps.replaceChildren();
          finish('fail', e instanceof VerificationError ? e.words : say('not-json'));
          return;
        }
        if (isObject(value) && isObject(get(value, 'certificate'))) await runCertificate(value);
        else if (isObject(value) && 'transaction' in value) await runReceipt(value);
        else {
          begin('receipt');
          steps.replaceChildren();
          finish('fail', say('not-receipt'));
        }
      } else if (asked) {
        begin('certificate');
        let got;
        try {
          got = await fetchJson('/v1/certificates/' + encodeURIComponent(asked), asked);
        } catch (e) {
          steps.replaceChildren();
          finish('fail', e instanceof VerificationError ? e.words : say('internal', { why: String(e) }));
          return;
        }
        if (got.missing) {
          steps.replaceChildren();
          finish('fail', say('no-certificate', { number: asked }));
          return;
        }
        await runCertificate(got.value);
      } else {
        begin('receipt');
        steps.replaceChildren();
        finish('fail', say('nothing'));
      }
    } finally {
      busy.disabled = false;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  if (number.value.trim() && !text.value.trim()) run(); // opened from a certificate's QR code
}

// --- "verified in your browser" marks on lists -----------------------------------------------

const MARK_WORKERS = 4;

async function markOne(el, keys) {
  const mark = (state, words) => {
    el.dataset.state = state;
    const icon = el.querySelector('.mark-icon');
    const text = el.querySelector('.mark-text');
    icon.textContent = { ok: '✓', fail: '✗', pending: '…', wait: '…' }[state];
    text.textContent = words;
  };
  try {
    const got = await fetchJson(el.dataset.verifyReceipt, el.dataset.verifyReceipt);
    if (got.missing) throw new VerificationError('fetch-failed', { what: el.dataset.verifyReceipt });
    let why = '';
    const outcome = await checkReceipt(got.value, keys, (step, state, words) => {
      if (state === 'fail') why = words;
    });
    if (outcome === 'ok') mark('ok', say('mark-ok'));
    else if (outcome === 'pending') mark('pending', say('mark-pending'));
    else mark('fail', say('mark-fail', { why }));
    el.title = engineWords();
  } catch (e) {
    const words = e instanceof VerificationError ? e.words : say('internal', { why: String(e && e.message) });
    mark('fail', say('mark-fail', { why: words }));
  }
}

async function marks(list) {
  for (const el of list) {
    const icon = document.createElement('span');
    icon.className = 'mark-icon';
    icon.setAttribute('aria-hidden', 'true');
    icon.textContent = '…';
    const text = document.createElement('span');
    text.className = 'mark-text';
    text.textContent = say('mark-checking');
    el.replaceChildren(icon, text);
    el.dataset.state = 'wait';
    el.hidden = false;
  }
  let keys;
  try {
    keys = await prepare();
  } catch (e) {
    const words = e instanceof VerificationError ? e.words : say('internal', { why: String(e && e.message) });
    for (const el of list) {
      el.dataset.state = 'fail';
      el.querySelector('.mark-icon').textContent = '✗';
      el.querySelector('.mark-text').textContent = say('mark-fail', { why: words });
    }
    return;
  }
  const queue = [...list];
  const worker = async () => {
    while (queue.length) await markOne(queue.shift(), keys);
  };
  await Promise.all(Array.from({ length: MARK_WORKERS }, worker));
}

// --- start -----------------------------------------------------------------------------------

const verifier = document.getElementById('verifier');
if (verifier) verifierPage(verifier);
const listed = [...document.querySelectorAll('[data-verify-receipt]')];
if (listed.length) marks(listed);

// For tests and the curious: the same functions, on the page.
globalThis.timebankVerify = {
  parseJson,
  jcsText,
  loadJwks,
  checkReceipt,
  checkCertificate,
  prepare,
  rootFromInclusion,
  equalBytes,
  VerificationError,
};
