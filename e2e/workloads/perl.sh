#!/usr/bin/env bash
# Perl (Debian's /usr/bin/perl) runs perl_work.pl: hashes, regexes, sort,
# string building and ithreads; it prints counts and digests.
#
#   perl.sh <input dir (unused)> <e2e dir>
set -euo pipefail
# Perl randomizes hash order per process; the script sorts what it prints,
# and a fixed seed keeps even the internal layout the same run to run.
export PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0
/usr/bin/perl "$2/workloads/perl_work.pl"
