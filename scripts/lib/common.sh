# shellcheck shell=bash
# Shared by scripts/test, scripts/bench and scripts/fuzz: the Debian packages bpool needs and the step
# that installs the missing ones. Sourced, not run.

# Everything the three scripts use, from Debian 12's archive. The core library needs only a C++20
# compiler; the rest is for tests (GoogleTest), benchmarks and their peers, the optional adapters,
# fuzzing (clang + its runtime) and plots.
BPOOL_PACKAGES=(
    cmake ninja-build g++ pkg-config git
    clang libclang-rt-14-dev clang-format doxygen
    libgtest-dev libgmock-dev libbenchmark-dev
    libmimalloc-dev libboost-container-dev libboost-dev libjemalloc-dev libgoogle-perftools-dev
    gnuplot-nox python3 python3-prometheus-client valgrind
)

# bpool_missing_packages: prints the packages of BPOOL_PACKAGES that dpkg does not list as installed.
bpool_missing_packages() {
    local pkg status
    for pkg in "${BPOOL_PACKAGES[@]}"; do
        # No pipe into grep -q: under pipefail, dpkg-query killed by SIGPIPE would read as missing.
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ "$status" == *"install ok installed"* ]] || echo "$pkg"
    done
}

# bpool_ensure_packages: installs what is missing (apt-get update once, then one apt-get install).
# When not root it prints the exact command to run and exits 1.
bpool_ensure_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "bpool: not a Debian system; make sure these are installed: ${BPOOL_PACKAGES[*]}" >&2
        return 0
    fi
    local missing
    mapfile -t missing < <(bpool_missing_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0
    local cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "bpool: missing Debian packages. Run as root:" >&2
        echo "  $cmd" >&2
        exit 1
    fi
    echo "bpool: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# bpool_jobs: parallel build jobs (all cores).
bpool_jobs() { nproc 2>/dev/null || echo 2; }
