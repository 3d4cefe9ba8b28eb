# shellcheck shell=bash
# examples/common.sh: shell code shared by examples/*/run.sh. Sourced, not run.
#
# Every example works from any current directory: it finds its own files from where the script
# is, makes the data path absolute before using it, and never changes directory.
#
#   example_data_file ARG FOLDER FILE   prints the absolute path of the data file to read. ARG is
#       - the data folder holding FILE, as on disk (e.g. ../shared/data/telco_churn),
#       - its parent holding FOLDER/FILE (e.g. ../shared/data), or
#       - the file itself (any regular file; its name is not checked, engage validates rows).
#     Otherwise it exits 2 with a message naming FILE, FOLDER and what was given.
#   example_engage                      prints the engage binary to run: $ENGAGE if set (a path
#     or a command name), else the checkout's build (build/default/engage beside examples/),
#     else `engage` on PATH. Exits 2 naming all three when there is none.
#   example_home                        exports ENGAGE_HOME; if it was not set, a new temporary
#     directory that is removed when the script exits.
#   example_require CMD...              exits 2 if a command the example needs is not on PATH.
#   example_ingest_path FILE            prints the path to give `engage ingest` for FILE: FILE,
#     or, if its path holds a glob character (* ? [), which engage ingest would expand, a
#     symlink to it in $ENGAGE_HOME/input/ named without them (call after engage init).
#
# Callers set `example_name` (used in messages) and `set -euo pipefail` before sourcing.

# The examples/ folder, symlinks resolved (so build/ is found from a symlinked examples/ too).
example_root="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"

example_die() {
  printf '%s: %s\n' "${example_name:-run.sh}" "$*" >&2
  exit 2
}

# The absolute form of an existing path, without resolving its last component.
example_abspath() {
  local dir base
  dir="$(dirname -- "$1")"
  base="$(basename -- "$1")"
  dir="$(CDPATH='' cd -- "$dir" && pwd)" || example_die "cannot enter $(dirname -- "$1")"
  if [ "$dir" = / ]; then
    printf '/%s\n' "$base"
  else
    printf '%s/%s\n' "$dir" "$base"
  fi
}

example_data_file() {
  local arg="$1" folder="$2" file="$3" found=""
  local expected="the $folder data folder holding $file (e.g. ../shared/data/$folder from the"
  expected+=" repository root), its parent (e.g. ../shared/data) or the file itself"
  [ -n "$arg" ] || example_die "no data given: expected $expected"
  if [ -f "$arg" ]; then
    found="$arg"
  elif [ -f "$arg/$file" ]; then
    found="$arg/$file"
  elif [ -f "$arg/$folder/$file" ]; then
    found="$arg/$folder/$file"
  elif [ ! -e "$arg" ]; then
    example_die "'$arg' does not exist (from $(pwd)): expected $expected"
  else
    example_die "no $file in '$arg' nor in '$arg/$folder': expected $expected"
  fi
  example_abspath "$found"
}

example_engage() {
  local candidate
  if [ -n "${ENGAGE:-}" ]; then
    case "$ENGAGE" in
      */*)
        if [ ! -f "$ENGAGE" ] || [ ! -x "$ENGAGE" ]; then
          example_die "ENGAGE=$ENGAGE is not an executable file"
        fi
        example_abspath "$ENGAGE"
        ;;
      *)
        command -v -- "$ENGAGE" || example_die "ENGAGE=$ENGAGE is not a command on PATH"
        ;;
    esac
    return 0
  fi
  candidate="$(dirname -- "$example_root")/build/default/engage"
  if [ -f "$candidate" ] && [ -x "$candidate" ]; then
    printf '%s\n' "$candidate"
  elif command -v engage; then
    :
  else
    example_die "no engage binary: set ENGAGE=/path/to/engage, build this checkout" \
      "(make build: $candidate) or put engage on PATH (make install)"
  fi
}

example_home() {
  if [ -z "${ENGAGE_HOME:-}" ]; then
    ENGAGE_HOME="$(mktemp -d "${TMPDIR:-/tmp}/engage-example.XXXXXX")"
    trap 'rm -rf -- "$ENGAGE_HOME"' EXIT
  fi
  export ENGAGE_HOME
}

example_require() {
  local cmd
  for cmd in "$@"; do
    command -v -- "$cmd" >/dev/null || example_die "$cmd is required (Debian package $cmd)"
  done
}

example_ingest_path() {
  local link
  case "$1" in
    *[*?[]*)
      link="$(basename -- "$1")"
      link="$ENGAGE_HOME/input/${link//[*?[]/_}"
      if ! mkdir -p -- "$ENGAGE_HOME/input" || ! ln -sfn -- "$1" "$link"; then
        example_die "cannot link $1 into $ENGAGE_HOME/input"
      fi
      printf '%s\n' "$link"
      ;;
    *) printf '%s\n' "$1" ;;
  esac
}
