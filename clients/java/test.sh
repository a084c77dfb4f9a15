#!/usr/bin/env bash
# The Java client's checks: compile the client (javac, Debian's gson), build realm-client.jar,
# compile the JUnit 5 tests and run them with JUnit's console launcher (Debian's junit5). The
# tests start realm-server themselves (REALM_SERVER_BIN, default target/debug/realm-server;
# REALM_MODEL), or use the one at REALM_TEST_URL with the keys REALM_TEST_KEY,
# REALM_TEST_LIMITED_KEY, REALM_TEST_METRICS_KEY (scripts/test-clients.sh); S6 always starts its
# own. Prints "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
BUILD="$CACHE/java-build"
GSON=/usr/share/java/gson.jar
JUNIT=/usr/share/java/junit-platform-console-standalone.jar
for f in "$GSON" "$JUNIT"; do
  [ -f "$f" ] || { echo "missing $f: apt-get install libgoogle-gson-java junit5 (scripts/setup.sh)" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "missing javac: apt-get install openjdk-17-jdk-headless" >&2; exit 1; }
rm -rf "$BUILD/main" "$BUILD/test"
mkdir -p "$BUILD/main" "$BUILD/test"
javac -Xlint:all -Werror --release 17 -encoding UTF-8 -d "$BUILD/main" -cp "$GSON" $(find src/main/java -name '*.java')
jar --create --file "$BUILD/realm-client.jar" -C "$BUILD/main" .
javac -Xlint:all --release 17 -encoding UTF-8 -d "$BUILD/test" -cp "$BUILD/main:$GSON:$JUNIT" $(find src/test/java -name '*.java')
LOG="$BUILD/junit.log"
set +e
java -jar "$JUNIT" -cp "$BUILD/test:$BUILD/main:$GSON" --select-package ai.realm.client \
  --disable-banner --disable-ansi-colors --details=tree --reports-dir "$BUILD/reports" "$@" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/^\[ *\([0-9]*\) tests successful *\]$/\1/p' "$LOG")
failed=$(sed -n 's/^\[ *\([0-9]*\) tests failed *\]$/\1/p' "$LOG")
aborted=$(sed -n 's/^\[ *\([0-9]*\) tests aborted *\]$/\1/p' "$LOG")
cfailed=$(sed -n 's/^\[ *\([0-9]*\) containers failed *\]$/\1/p' "$LOG")
passed=${passed:-0}; failed=$(( ${failed:-0} + ${aborted:-0} + ${cfailed:-0} ))
echo "java client: $passed passed, $failed failed"
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
