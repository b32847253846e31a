# Sourced by ./mvnw, ./vhost-appliance and .ci/run: make JAVA_HOME point at a JDK >= 25.
# Quarkus build steps run inside Maven's own JVM, so toolchains cannot help: Maven itself
# must run on JDK 25. Order: a JAVA_HOME that is already >= 25, then the newest JDK >= 25
# under /usr/lib/jvm (Debian, Temurin packages) or /opt; otherwise one clear sentence.
vhost_jdk_feature() { # prints the feature version (e.g. 25) of the JDK at $1, or nothing
  [ -x "$1/bin/java" ] || return 0
  if [ -r "$1/release" ]; then
    sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" | head -n 1
  else
    "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
  fi
}
vhost_select_jdk() {
  vhost_min=25
  if [ -n "${JAVA_HOME-}" ]; then
    v=$(vhost_jdk_feature "$JAVA_HOME")
    if [ -n "$v" ] && [ "$v" -ge "$vhost_min" ]; then return 0; fi
  fi
  best="" bestv=0
  case $- in *f*) vhost_noglob=1; set +f;; *) vhost_noglob=0;; esac
  # VHOST_JDK_DIRS (a list of JDK directories) replaces the search locations; tests use it.
  for d in ${VHOST_JDK_DIRS:-/usr/lib/jvm/* /opt/java/* /opt/jdk* /opt/*jdk*}; do
    [ -d "$d" ] && [ ! -L "$d" ] || continue
    v=$(vhost_jdk_feature "$d")
    if [ -n "$v" ] && [ "$v" -ge "$vhost_min" ] && [ "$v" -gt "$bestv" ] && [ -x "$d/bin/javac" ]; then
      best=$d bestv=$v
    fi
  done
  [ "$vhost_noglob" = 0 ] || set -f
  if [ -z "$best" ]; then
    echo "vhost-appliance needs a JDK 25 or newer and found none (JAVA_HOME, /usr/lib/jvm, /opt): install one, e.g. the temurin-25-jdk package, or set JAVA_HOME to it." >&2
    return 1
  fi
  JAVA_HOME=$best
  export JAVA_HOME
}
