#!/usr/bin/env bash
# Re-creates web/vendor/ from the npm registry: the browser builds the playground and the console
# embed, pinned by version and checked against the registry's sha512 integrity, with their
# licenses.
# Nothing is fetched at run time; the server serves these files from inside the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
out=web/vendor
# package@version  integrity  file-in-package  vendored-name  license-file
packages=(
  "graphiql@3.8.3|sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==|graphiql.min.js graphiql.min.css|LICENSE"
  "react@18.3.1|sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==|umd/react.production.min.js|LICENSE"
  "react-dom@18.3.1|sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==|umd/react-dom.production.min.js|LICENSE"
  "d3@7.9.0|sha512-e1U46jVP+w7Iut8Jt8ri1YsPOvFpg46k+K8TpCb0P+zjCkjkPnV7WzfDJzMHy1LnA+wj5pLT1wjO901gLXeEhA==|dist/d3.min.js|LICENSE"
  "graphql-ws@5.16.0|sha512-Ju2RCU2dQMgSKtArPbEtsK5gNLnsQyTNIo/T7cZNp96niC1x0KdJNZV0TIoilceBPQwfb5itrGl8pkFeOUMl4A==|umd/graphql-ws.min.js|LICENSE.md"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/LICENSES"
for entry in "${packages[@]}"; do
  IFS='|' read -r spec integrity files license <<<"$entry"
  name=${spec%@*}
  (cd "$tmp" && npm pack "$spec" --silent >/dev/null)
  tgz=$(ls "$tmp"/"${name}"-*.tgz)
  actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    echo "integrity mismatch for $spec: $actual" >&2
    exit 1
  fi
  mkdir -p "$tmp/$name"
  tar xzf "$tgz" -C "$tmp/$name"
  for f in $files; do cp "$tmp/$name/package/$f" "$out/$(basename "$f")"; done
  cp "$tmp/$name/package/$license" "$out/LICENSES/$name-LICENSE"
  echo "vendored $spec"
done
