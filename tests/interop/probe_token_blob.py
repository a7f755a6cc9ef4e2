"""11.4 token hash and 11.9 blobs: python probe_token_blob.py URL RELAY_DIR CLIENT_DIR PASSWORD_FILE"""
import sys, sqlite3, hashlib, json, urllib.request, urllib.error, os
from store_open import Store
url, rdir, cdir, pwf = sys.argv[1:5]
pw = open(pwf, "rb").read().rstrip(b"\n")
store = Store(cdir, pw, log=lambda _: None)
sealed = store.db.execute("select slot, sealed from records where kind = 3").fetchone()
token = store.open_rec(3, bytes(sealed[0]), bytes(sealed[1]))[0][:32]
h = hashlib.sha256(b"umbra/v1/relay/token-hash" + token).digest()
rows = [bytes(r[0]) for r in sqlite3.connect(f"{rdir}/umbra.db").execute("select token_hash from tokens")]
print(("ok   " if h in rows else "FAIL ") + "relay stores SHA-256('umbra/v1/relay/token-hash' || token), not the token", token not in rows)
def req(method, path, body=None, auth=None):
    r = urllib.request.Request(url + path, data=body, method=method)
    if auth: r.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(r) as resp: return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e: return e.code, e.headers, e.read()
blob = os.urandom(150000)
st, hd, body = req("POST", "/v1/blobs", blob, "Bearer " + token.hex().upper())
j = json.loads(body) if st == 201 else {}
print(("ok   " if st == 201 and hd["Content-Type"].startswith("application/json") and j.get("size") == len(blob) and len(j.get("id", "")) == 64 and j["id"] == j["id"].lower() else "FAIL ") + f"POST /v1/blobs (upper-case hex token) -> 201 {j}")
st, hd, got = req("GET", "/v1/blobs/" + j.get("id", "00"))
print(("ok   " if st == 200 and got == blob and hd["Content-Type"] == "application/octet-stream" and int(hd["Content-Length"]) == len(blob) else "FAIL ") + f"GET -> 200, same bytes, octet-stream, Content-Length")
st, _, _ = req("POST", "/v1/blobs", b"x", "Bearer " + "00" * 32); print(("ok   " if st == 401 else "FAIL ") + f"bad token -> 401 ({st})")
st, _, _ = req("POST", "/v1/blobs", b"", "Bearer " + token.hex()); print(("ok   " if st == 400 else "FAIL ") + f"empty body -> 400 ({st})")
st, _, _ = req("GET", "/v1/blobs/" + "ab" * 32); print(("ok   " if st == 404 else "FAIL ") + f"unknown blob -> 404 ({st})")
st, _, _ = req("GET", "/v1/blobs/xyz"); print(("ok   " if st == 404 else "FAIL ") + f"malformed id -> 404 ({st})")
for p, want in (("/healthz", b"ok"), ("/readyz", b"ready")):
    st, _, b = req("GET", p); print(("ok   " if st == 200 and b.strip() == want else "FAIL ") + f"{p} -> {st} {b[:20]!r}")
