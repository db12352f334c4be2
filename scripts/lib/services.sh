# Sourced by scripts/test: make sure the database servers the integration tests use are up.
# PostgreSQL (127.0.0.1:5432, trust) and MariaDB (127.0.0.1:3306, root without password)
# are installed on this kind of machine; start them if they are down.
wait_for() {  # wait_for <what> <command...>: poll up to 30 s
    local what=$1; shift
    for _ in $(seq 1 60); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "$what did not come up" >&2
    return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL ..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
fi

if ! mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null 2>&1; then
    echo "starting MariaDB ..." >&2
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    wait_for MariaDB mariadb -h 127.0.0.1 -u root -e 'SELECT 1'
fi

apt_install() {  # apt_install <package>: Debian's package, updating the index once if needed
    if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
    echo "installing $1 (Debian package) ..." >&2
    DEBIAN_FRONTEND=noninteractive $apt_get install -y --no-install-recommends "$1" >/dev/null \
        || { DEBIAN_FRONTEND=noninteractive $apt_get update >/dev/null \
             && DEBIAN_FRONTEND=noninteractive $apt_get install -y --no-install-recommends "$1" >/dev/null; }
}

# ClickHouse: Debian's package; the tests start a private server on free ports
# with its data under a temp dir (tests/clickhouse_server.py), so only install here.
if ! command -v clickhouse-server >/dev/null 2>&1 && [ ! -x /usr/sbin/clickhouse-server ]; then
    apt_install clickhouse-server
fi

# PgBouncer (Debian's pgbouncer): the PostgreSQL store's tests start private ones on free ports
# in front of the server above, each with its own config under a temp dir
# (tests/support/pgbouncer_server.py), so only install here.
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    apt_install pgbouncer
fi

# Chromium (headless): the backtest HTML report is rendered and checked in a real browser.
if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
fi

# Debian's prometheus package: promtool checks /metrics, the alert rules and the dashboard's
# queries and backfills known samples; the prometheus server is the `prometheus` collector's
# private test instance (tests/prometheus_server.py). systemd-analyze verifies the unit file.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    apt_install prometheus
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    apt_install systemd
fi

# Alertmanager (Debian's prometheus-alertmanager): the tests start private ones on free ports
# with their own storage and no clustering (tests/alertmanager_server.py); amtool checks
# etc/alertmanager.yml.
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    apt_install prometheus-alertmanager
fi

# ChromeDriver for the web UI's browser tests (Selenium drives Debian's chromium).
if ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium-driver
fi
