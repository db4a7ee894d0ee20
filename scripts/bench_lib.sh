# Sourced by scripts/bench_*.sh: what every benchmark script needs.

# The median of the numbers on stdin, one per line (the mean of the middle two for an even count).
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# require_executable SCRIPT PATH WHY: exit 2 with "SCRIPT: PATH not foundWHY" unless PATH is executable.
require_executable() { [[ -x "$2" ]] || { echo "$1: $2 not found$3" >&2; exit 2; }; }

# The build's clustersim binary, checked (exit 2 naming the script when it is missing).
require_clustersim() { require_executable "$1" "$2" "; build the clustersim target first"; }

# /usr/bin/time, for max RSS (%M).
require_time() { require_executable "$1" /usr/bin/time " (Debian package: time)"; }
