#!/bin/sh
# Installs berth for people: the binary, berth-docs (the generator `berth completion` and `berth man`
# run), one man page per verb, and completion scripts where bash-completion, zsh and fish look.
#   scripts/install.sh [--prefix DIR] [--from DIR]
# --prefix: default /usr/local (bin/, share/man/man1/, share/bash-completion/completions/,
#           share/zsh/site-functions/, share/fish/vendor_completions.d/)
# --from:   take berth and berth-docs from DIR instead of building them (cargo build --release)
set -eu
prefix=/usr/local
from=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --from) from=${2:?--from needs a directory}; shift 2 ;;
        *) echo "usage: scripts/install.sh [--prefix DIR] [--from DIR]" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
if [ -z "$from" ]; then
    ./scripts/toolchain.sh
    cargo build --release -q --bins
    from=target/x86_64-unknown-linux-musl/release
fi
for b in berth berth-docs; do
    [ -x "$from/$b" ] || { echo "install.sh: $from/$b: not an executable" >&2; exit 1; }
done
man="$prefix/share/man/man1"
bash_dir="$prefix/share/bash-completion/completions"
zsh_dir="$prefix/share/zsh/site-functions"
fish_dir="$prefix/share/fish/vendor_completions.d"
install -d "$prefix/bin" "$man" "$bash_dir" "$zsh_dir" "$fish_dir"
install -m 0755 "$from/berth" "$from/berth-docs" "$prefix/bin/"
"$prefix/bin/berth" man --dir "$man"
"$prefix/bin/berth" completion bash > "$bash_dir/berth"
"$prefix/bin/berth" completion zsh > "$zsh_dir/_berth"
"$prefix/bin/berth" completion fish > "$fish_dir/berth.fish"
echo "installed berth into $prefix (man berth, man berth-run; completion for bash, zsh and fish)"
