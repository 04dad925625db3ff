#!/usr/bin/env bash
# bench/peers.sh: kleinstadtbot beside the bare nio floor (plain and encrypted) and maubot, in
# the shared peerbench harness (../shared/peerbench: one fresh local Synapse per run, the command
# re-sent every 0.5 s until the first reply, 30 round trips, a warm restart, RSS).
#
#   bench/peers.sh [ROOMS...]          default: 0 1000; two rounds per room count, alternating
#
# Labels (the first three exactly as in the shared compare.sh):
#   A-nio-floor       the shared echo_floor_bot.py: bare nio, no encryption, no store
#   B-nio-floor-e2e   bench/floor_e2e.py: bare nio with encryption and a store, as we run
#   C-maubot          maubot 0.6.0 standalone with the shared one-command plugin
#   D-kleinstadtbot   `kleinstadtbot run`, encryption on
#   E-kleinstadtbot-profile-set   the same with its profile left as it is (bench/peers-profile-set.yaml.tmpl),
#                     as after the first start of an account; maubot's template does the same
#   E0-kleinstadtbot-uncached   E with its code cache off (CACHE_DIRECTORY in a folder that cannot be
#                     made): every dataclass method compiled at every start, as before 10c1a1d
#   EB-kleinstadtbot-profile-set-COMMIT   E as an earlier commit (--base COMMIT, BOTS naming
#                     ours_base_profile_set): the same rounds before and after a change
#   F-nio-floor-e2e-stack  bench/floor_e2e.py --stack: the encrypted floor on the project's stack
#                     (pydantic-settings, aiosqlite, Jinja2 i18n, Babel; APScheduler after the
#                     first reply) and nothing of the bot: the floor of a bot built on that stack
#   G-nio-floor-e2e-stack-least  bench/floor_e2e.py --stack-least: the least a bot on that stack
#                     does before its first answer (collector paused, settings, the command
#                     recorded in SQLite, a plain reply; rendering and APScheduler after it)
#   H-nio-floor-e2e-stack-guide  bench/floor_e2e.py --stack-guide: the least a bot on that stack
#                     does before its first answer when it follows the developers' guide (settings
#                     from a YAML file, the reply rendered from a compiled Jinja2 template with
#                     i18n and a Babel duration in German, HTML, reply relation, m.mentions)
# Set-up once: the two venvs of the header of compare.sh under $PB_HOME (default /tmp/peerbench).
# Environment: PEERBENCH (the harness folder), PB_HOME, OUT (results, default
# $PB_HOME/results.jsonl; a series appends), KB (the kleinstadtbot command, default
# .venv/bin/kleinstadtbot; bench/peers.sh --at COMMIT runs that commit as an operator installs it
# instead: `pip install` of a snapshot into a venv of its own, with the runtime dependencies only,
# pinned by requirements.lock; the floors B and F then run with that venv's Python, so all three
# import the same packages. The project's .venv also holds the test dependencies, Synapse among
# them, whose cffi makes pycryptodome (nio's encryption) parse its C declarations at every start:
# what an operator's install never pays. --base COMMIT adds label D0-kleinstadtbot-COMMIT, an
# earlier commit installed the same way, to the rounds; BOTS may name ours_base_profile_set too:
# label EB-kleinstadtbot-profile-set-COMMIT, that commit run as E),
# ROUNDS (default 2), RESTARTS (warm restarts per run, default 1; the tables show their median), BOTS (default "floor ours floor_e2e maubot ours_profile_set": which labels,
# in this order), FLOORS (default 1: then also the floors under the figures, see below),
# SETTLE (seconds without a new reply before the harness stops counting the answers to the
# commands sent during the start and begins the round trips; the harness's default is 3).
# Tables and ratios: .venv/bin/python bench/peers_summary.py $OUT
# The floors (FLOORS=1): bench/import_floor.py (CPU and RSS of importing the bot's parts) and
# bench/synapse_costs.py (Synapse's work per reply by content, per first sync by filter).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PEERBENCH="${PEERBENCH:-$REPO/../shared/peerbench}"
PB_HOME="${PB_HOME:-${TMPDIR:-/tmp}/peerbench}"; export PB_HOME
OUT="${OUT:-$PB_HOME/results.jsonl}"
ROUNDS="${ROUNDS:-2}"
KB="${KB:-$REPO/.venv/bin/kleinstadtbot}"
FLOOR_PY="$REPO/.venv/bin/python"  # the floors B and F; with --at, the snapshot's own venv
snapshot() {  # one commit installed under $PB_HOME (catalogs and bytecode built by the install)
  local rev; rev="$(git -C "$REPO" rev-parse --short "$1")" || exit 1
  local snap="$PB_HOME/kb-$rev"; rm -rf "$snap"; mkdir -p "$snap"
  git -C "$REPO" archive "$rev" | tar -x -C "$snap"
  python3 -m venv "$snap/.venv-run" || exit 1  # as an operator installs it (docs/operations.md)
  "$snap/.venv-run/bin/pip" install -q --disable-pip-version-check -c "$snap/requirements.lock" "$snap" >&2 || exit 1
  echo "$snap/.venv-run/bin"
}
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --at) RUN="$(snapshot "$2")" || exit 1; KB="$RUN/kleinstadtbot"; FLOOR_PY="$RUN/python"; shift 2 ;;
    --base) BASE_RUN="$(snapshot "$2")" || exit 1; KB_BASE="$BASE_RUN/kleinstadtbot"; BASE="$2"; shift 2 ;;  # adds label D0, that commit
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
NS="${*:-0 1000}"
PB="$PB_HOME/nio-venv/bin/python $PEERBENCH/peerbench.py --restarts ${RESTARTS:-1} --cleanup --synapse-python $PB_HOME/nio-venv/bin/python ${SETTLE:+--settle $SETTLE}"

floor() { $PB --label A-nio-floor --rooms "$1" --command '!ping' \
  --cmd '$PB_HOME/nio-venv/bin/python {here}/echo_floor_bot.py {homeserver} {user_id} {access_token} {device_id}' >>"$OUT"; }
floor_e2e() { $PB --label B-nio-floor-e2e --rooms "$1" --command '!ping' \
  --cmd "$FLOOR_PY $REPO/bench/floor_e2e.py {homeserver} {user_id} {access_token} {device_id} {data_dir}" >>"$OUT"; }
floor_stack() { $PB --label F-nio-floor-e2e-stack --rooms "$1" --command '!ping' \
  --cmd "$FLOOR_PY $REPO/bench/floor_e2e.py --stack {homeserver} {user_id} {access_token} {device_id} {data_dir}" >>"$OUT"; }
floor_stack_least() { $PB --label G-nio-floor-e2e-stack-least --rooms "$1" --command '!ping' \
  --cmd "$FLOOR_PY $REPO/bench/floor_e2e.py --stack-least {homeserver} {user_id} {access_token} {device_id} {data_dir}" >>"$OUT"; }
floor_stack_guide() { $PB --label H-nio-floor-e2e-stack-guide --rooms "$1" --command '!ping' \
  --cmd "$FLOOR_PY $REPO/bench/floor_e2e.py --stack-guide {homeserver} {user_id} {access_token} {device_id} {data_dir}" >>"$OUT"; }
ours() { $PB --label D-kleinstadtbot --rooms "$1" --command '!ping' --cmd "$KB run" \
  --env 'KLEINSTADTBOT_HOMESERVER={homeserver}' --env 'KLEINSTADTBOT_USER_ID={user_id}' \
  --env 'KLEINSTADTBOT_ACCESS_TOKEN={access_token}' --env 'KLEINSTADTBOT_DEVICE_ID={device_id}' \
  --env 'KLEINSTADTBOT_DATABASE={data_dir}/kb.db' --env 'KLEINSTADTBOT_RATE_LIMIT__COMMANDS=10000' >>"$OUT"; }
ours_profile_set() { $PB --label E-kleinstadtbot-profile-set --rooms "$1" --command '!ping' --cmd "$KB run --config {config}" \
  --config-template "$REPO/bench/peers-profile-set.yaml.tmpl:kb.yaml" \
  --env 'KLEINSTADTBOT_HOMESERVER={homeserver}' --env 'KLEINSTADTBOT_USER_ID={user_id}' \
  --env 'KLEINSTADTBOT_ACCESS_TOKEN={access_token}' --env 'KLEINSTADTBOT_DEVICE_ID={device_id}' \
  --env 'KLEINSTADTBOT_DATABASE={data_dir}/kb.db' --env 'KLEINSTADTBOT_RATE_LIMIT__COMMANDS=10000' >>"$OUT"; }
ours_uncached() { $PB --label E0-kleinstadtbot-uncached --rooms "$1" --command '!ping' --cmd "$KB run --config {config}" \
  --config-template "$REPO/bench/peers-profile-set.yaml.tmpl:kb.yaml" --env 'CACHE_DIRECTORY=/dev/null/code-cache' \
  --env 'KLEINSTADTBOT_HOMESERVER={homeserver}' --env 'KLEINSTADTBOT_USER_ID={user_id}' \
  --env 'KLEINSTADTBOT_ACCESS_TOKEN={access_token}' --env 'KLEINSTADTBOT_DEVICE_ID={device_id}' \
  --env 'KLEINSTADTBOT_DATABASE={data_dir}/kb.db' --env 'KLEINSTADTBOT_RATE_LIMIT__COMMANDS=10000' >>"$OUT"; }
ours_base_profile_set() { $PB --label "EB-kleinstadtbot-profile-set-$BASE" --rooms "$1" --command '!ping' \
  --cmd "$KB_BASE run --config {config}" --config-template "$REPO/bench/peers-profile-set.yaml.tmpl:kb.yaml" \
  --env 'KLEINSTADTBOT_HOMESERVER={homeserver}' --env 'KLEINSTADTBOT_USER_ID={user_id}' \
  --env 'KLEINSTADTBOT_ACCESS_TOKEN={access_token}' --env 'KLEINSTADTBOT_DEVICE_ID={device_id}' \
  --env 'KLEINSTADTBOT_DATABASE={data_dir}/kb.db' --env 'KLEINSTADTBOT_RATE_LIMIT__COMMANDS=10000' >>"$OUT"; }
ours_base() { $PB --label "D0-kleinstadtbot-$BASE" --rooms "$1" --command '!ping' --cmd "$KB_BASE run" \
  --env 'KLEINSTADTBOT_HOMESERVER={homeserver}' --env 'KLEINSTADTBOT_USER_ID={user_id}' \
  --env 'KLEINSTADTBOT_ACCESS_TOKEN={access_token}' --env 'KLEINSTADTBOT_DEVICE_ID={device_id}' \
  --env 'KLEINSTADTBOT_DATABASE={data_dir}/kb.db' --env 'KLEINSTADTBOT_RATE_LIMIT__COMMANDS=10000' >>"$OUT"; }
maubot() { $PB --label C-maubot --rooms "$1" --command '!ping' \
  --cmd '$PB_HOME/mb-venv/bin/python -m maubot.standalone -c {config} -m {here}/maubot-ping/maubot.yaml' \
  --config-template "$PEERBENCH/maubot-standalone.config.yaml.tmpl:config.yaml" >>"$OUT"; }

mkdir -p "$PB_HOME"
echo "# series $(date -u +%FT%TZ) kb=$KB load: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
for n in $NS; do
  for round in $(seq "$ROUNDS"); do
    echo "[peers] rooms $n round $round, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    for bot in ${BOTS:-floor ours floor_e2e maubot ours_profile_set ${KB_BASE:+ours_base}}; do "$bot" "$n"; done
  done
done
echo "# end $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
"$REPO/.venv/bin/python" "$REPO/bench/peers_summary.py" "$OUT"
if [[ "${FLOORS:-1}" == 1 ]]; then
  "$FLOOR_PY" "$REPO/bench/import_floor.py"  # the packages the floors and the bot ran with
  PEERBENCH="$PEERBENCH" "$REPO/.venv/bin/python" "$REPO/bench/synapse_costs.py" replies
  PEERBENCH="$PEERBENCH" "$REPO/.venv/bin/python" "$REPO/bench/synapse_costs.py" first-sync --rooms "${NS##* }"
fi
