#!/usr/bin/env bash
# Runs libguestfs's own shell tests (fish/test-*.sh, tests/*/test-*.sh,
# tests/regressions/*.sh from the libguestfs source package) with guestsh as
# the `guestfish` on PATH, in the environment libguestfs's Makefiles give
# them (`run --test` and $TEST_FUNCTIONS), one copy of the source tree per run.
#
#   test/upstream/run.sh                 the selection (tests.tsv rows marked "run")
#   test/upstream/run.sh NAME...         those tests only (e.g. fish/test-alloc.sh)
#   test/upstream/run.sh --all           every shell test the package has
#   test/upstream/run.sh --list          their names, one a line (tests.tsv has a row for each)
#   test/upstream/run.sh --reference ... the same with the installed guestfish
#                                        (how tests.tsv's selection was made)
#
# Prints one line per test, `PASS|FAIL|SKIP NAME SECONDS`, and each failure's
# log after its line; exits 1 when any test failed. Nothing of libguestfs is
# kept in the repository: the source package is fetched with `apt-get source`
# (deb-src must be enabled; ./dev does it) into the cache, once.
#
# Environment: GUESTSH_LIBGUESTFS_SRC (an unpacked source tree to use instead
# of the cache), GUESTSH_UPSTREAM_TIMEOUT (seconds per test, default 600),
# GUESTSH_UPSTREAM_KEEP=1 (keep the scratch tree and say where it is),
# GUESTSH_UPSTREAM_LOCK=FILE (hold flock FILE around each test, not the run).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
table=$here/tests.tsv
reference=0
all=0
list=0
names=()
for a in "$@"; do
  case $a in
    --reference) reference=1 ;;
    --all) all=1 ;;
    --list) list=1 ;;
    -*) echo "run.sh: unknown option $a (see the header of $0)" >&2; exit 2 ;;
    *) names+=("$a") ;;
  esac
done

die() { echo "run.sh: error: $*" >&2; exit 2; }

fetch_source() {
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/guestsh/libguestfs-source
  local version
  version=$(dpkg-query -W -f='${Version}' libguestfs0 2>/dev/null) ||
    die "libguestfs0 is not installed: run ./dev first"
  local upstream=${version#*:}
  upstream=${upstream%-*}
  local dir=$cache/libguestfs-$upstream
  if [[ ! -f $dir/tests/test-functions.sh ]]; then
    mkdir -p "$cache"
    local tmp
    tmp=$(mktemp -d "$cache/fetch.XXXXXX")
    echo "run.sh: fetching the libguestfs $version source package (apt-get source, once)" >&2
    if ! (cd "$tmp" && apt-get source -q "libguestfs=$version" >&2); then
      rm -rf "$tmp"
      die "apt-get source libguestfs=$version failed: enable deb-src (./dev does) and run apt-get update"
    fi
    rm -rf "$dir"
    mv "$tmp/libguestfs-$upstream" "$dir" || { rm -rf "$tmp"; die "the source package did not unpack into libguestfs-$upstream"; }
    rm -rf "$tmp"
  fi
  echo "$dir"
}

src=${GUESTSH_LIBGUESTFS_SRC:-$(fetch_source)} || exit 2
[[ -f $src/tests/test-functions.sh ]] || die "$src is not a libguestfs source tree (no tests/test-functions.sh)"

# Every shell test the package has, as the Makefiles name them: fish/NAME
# runs in fish/, tests/DIR/NAME runs in tests/ as DIR/NAME.
all_tests() {
  (cd "$src" && ls fish/test-*.sh tests/*/test-*.sh tests/regressions/*.sh) | sort -u
}

if ((list)); then
  all_tests
  exit 0
fi

if ((${#names[@]} == 0)); then
  if ((all)); then
    mapfile -t names < <(all_tests)
  else
    mapfile -t names < <(awk -F'\t' '$2 == "run" { print $1 }' "$table")
  fi
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/guestsh-upstream.XXXXXX")
cleanup() {
  if [[ ${GUESTSH_UPSTREAM_KEEP:-} == 1 ]]; then
    echo "run.sh: scratch tree kept in $scratch" >&2
  else
    chmod -R u+w "$scratch" 2>/dev/null
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

tree=$scratch/tree
mkdir -p "$tree/tmp" "$scratch/bin" "$scratch/logs"
cp -a "$src/fish" "$src/tests" "$src/test-data" "$tree/"
# config.sh is configure's output; the shell tests read only these two names.
printf 'export XMLLINT=""\nexport PYCODESTYLE=""\n' >"$tree/config.sh"

if ((reference)); then
  guestfish=$(command -v guestfish) || die "no guestfish installed (libguestfs-tools)"
  ln -s "$guestfish" "$scratch/bin/guestfish"
  export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
else
  [[ -f $repo/dist/src/cli.js ]] || die "guestsh is not built: run npx tsc -p tsconfig.json"
  # A link, not a wrapper: called by the name guestfish, guestsh speaks its error dialect.
  ln -s "$repo/bin/guestsh.js" "$scratch/bin/guestfish"
fi

# What libguestfs's `run --test` and subdir-rules.mk set for every test.
export PATH=$scratch/bin:$PATH
export LANG=C
export LIBGUESTFS_TMPDIR=$tree/tmp LIBGUESTFS_CACHEDIR=$tree/tmp
export VG=
unset CDPATH LIBGUESTFS_DEBUG LIBGUESTFS_TRACE

timeout_s=${GUESTSH_UPSTREAM_TIMEOUT:-600}
failed=0
for name in "${names[@]}"; do
  [[ -f $tree/$name ]] || die "no test $name in the source package"
  case $name in
    fish/*) sub=fish; rel=${name#fish/} ;;
    tests/*) sub=tests; rel=${name#tests/} ;;
    *) die "unexpected test path $name" ;;
  esac
  dir=$tree/$sub
  export srcdir=. top_srcdir=.. top_builddir=..
  export abs_srcdir=$dir abs_builddir=$dir abs_top_srcdir=$tree abs_top_builddir=$tree
  export TEST_FUNCTIONS="source $tree/tests/test-functions.sh abs_srcdir=\"$dir\" abs_builddir=\"$dir\" top_srcdir=\"..\" top_builddir=\"..\" abs_top_srcdir=\"$tree\" abs_top_builddir=\"$tree\""
  log=$scratch/logs/${name//\//_}.log
  start=$SECONDS
  lock=()
  [[ -n ${GUESTSH_UPSTREAM_LOCK:-} ]] && lock=(flock "$GUESTSH_UPSTREAM_LOCK")
  (cd "$dir" && "${lock[@]}" timeout -k 30 "$timeout_s" "./$rel" </dev/null >"$log" 2>&1)
  rc=$?
  took=$((SECONDS - start))
  if ((rc == 0)); then
    echo "PASS $name $took"
  elif ((rc == 77)); then
    echo "SKIP $name $took $(grep -m1 'skipped\|only runs' "$log")"
  else
    failed=1
    ((rc == 124 || rc == 137)) && echo "run.sh: $name timed out after ${timeout_s}s" >>"$log"
    echo "FAIL $name $took (exit $rc)"
    sed 's/^/    /' "$log" | tail -n 40
  fi
done
exit $failed
