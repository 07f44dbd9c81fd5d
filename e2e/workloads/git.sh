#!/usr/bin/env bash
# git on a generated repository (310 files in 10 directories): init, add,
# commit, then eight commits that edit, add, rename and delete files, a
# branch merged back, a repack with two threads, fsck; prints the commit
# ids, the log with stats, a grep, a blame and the diff of the first commit
# against the last. Names, e-mails and dates are pinned, so the commit ids
# are the same on every run.
#
#   git.sh <input dir> <e2e dir>
set -euo pipefail
input=$1
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@example.invalid
export GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@example.invalid
when=1000000000
commit() {  # commit <message>: every change in the tree, at the next second
  when=$((when + 60))
  GIT_AUTHOR_DATE="@$when +0000" GIT_COMMITTER_DATE="@$when +0000" git commit -q -m "$1"
}

cp -r "$input/src" repo
cd repo
git init -q -b main .
git config core.autocrlf false
git config gc.auto 0
git add -A
commit "initial: $(git ls-files | wc -l) files"
for round in 1 2 3 4; do
  for d in dir0$round dir0$((round + 4)); do
    for f in "$d"/file0[0-9]$round.txt; do
      awk -v r="$round" 'NR % 3 == 0 { $0 = toupper($0) " round" r } { print }' "$f" > "$f.new"
      mv "$f.new" "$f"
    done
  done
  printf 'added in round %d\n' "$round" > "dir09/new$round.txt"
  git add -A
  commit "round $round: edit, add"
done
git checkout -q -b side
git mv dir00/file000.txt dir00/renamed.txt
git rm -q dir01/file00[0-4].txt
commit "side: rename and delete"
git checkout -q main
sed -i 's/alpha/ALPHA/g' dir02/file010.txt
git add -A
commit "main: alpha in capitals"
when=$((when + 60))
GIT_AUTHOR_DATE="@$when +0000" GIT_COMMITTER_DATE="@$when +0000" git merge -q --no-ff -m "merge side" side
git -c pack.threads=2 repack -q -a -d -f --window=50
git fsck --full --no-progress --strict
echo "== commits"
git rev-list --topo-order HEAD
echo "== log"
git log --stat --format='%H %an %ad %s' --date=raw
echo "== grep"
git grep -c -e malloc -e 'free [0-9]' HEAD -- dir03 | sort
echo "== blame"
git blame -s dir02/file010.txt | md5sum
echo "== diff"
git diff --stat "$(git rev-list --max-parents=0 HEAD)" HEAD
git diff "$(git rev-list --max-parents=0 HEAD)" HEAD | md5sum
echo "== objects"
git count-objects -v | grep -E '^(count|in-pack|packs)'
git archive --format=tar HEAD | md5sum
