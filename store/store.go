// Package store opens the read-model database (PostgreSQL in production,
// SQLite embedded) behind Bun and applies its versioned migrations.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is a Bun database with the dialect it was opened with, so code that
// needs engine-specific SQL (upserts, COPY) can branch once.
type DB struct {
	*bun.DB
	Dialect Dialect
	// Path is the SQLite file (replays build their shadow beside it), or
	// the PostgreSQL URL.
	Path string
	// Writer runs the projections' write transactions (see Writer).
	Writer *Writer
}

// Close gives back the writer's connection and closes the database.
func (db *DB) Close() error {
	if db.Writer != nil {
		db.Writer.release()
	}
	return db.DB.Close()
}

// Open connects to rawURL: postgres:// or postgresql:// for PostgreSQL,
// sqlite:<path> or a plain file path for SQLite.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return openPostgres(ctx, rawURL)
	case rawURL == "":
		return nil, fmt.Errorf("opening database: no DATABASE_URL given")
	default:
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite://"), "sqlite:"))
	}
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	sqldb, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("opening postgres: %w", err)
	}
	sqldb.SetMaxOpenConns(16)
	sqldb.SetMaxIdleConns(16)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{DB: bun.NewDB(sqldb, pgdialect.New()), Dialect: Postgres, Path: rawURL}
	db.Writer = &Writer{db: db}
	if err := pingWithin(ctx, db, 10*time.Second); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to postgres at %s: %w", redactURL(rawURL), err)
	}
	return db, nil
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating sqlite directory: %w", err)
		}
	}
	// WAL lets readers run beside the single writer; immediate transactions
	// take the write lock up front so two writers queue on busy_timeout
	// instead of failing with SQLITE_BUSY on lock upgrade. Checkpointing
	// every 20,000 pages (80 MB of WAL) instead of SQLite's 1,000 copies a
	// hot index page back to the file once for many commits rather than
	// once for each few: the events projection applies 1.5× as fast with it
	// (`boost bench rows`, docs/benchmarks.md).
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(on)" + fmt.Sprintf("&_pragma=cache_size(-%d)", ReaderCacheKiB) +
		"&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(20000)&_txlock=immediate" +
		// Times are int64 µs (sqliteDialect): the driver writes a bound
		// time so and reads one back from a TIMESTAMP or DATE column.
		"&_inttotime=1&_time_integer_format=unix_micro"
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(8)
	sqldb.SetMaxIdleConns(8)
	sqldb.SetConnMaxIdleTime(0)
	db := &DB{DB: bun.NewDB(sqldb, sqliteDialect{sqlitedialect.New()}), Dialect: SQLite, Path: path}
	db.Writer = &Writer{db: db}
	if err := pingWithin(ctx, db, 10*time.Second); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	return db, nil
}

// sqliteDialect is bun's SQLite dialect with a time written as int64 µs
// since the epoch instead of as text: every time column of the SQLite
// read model holds one (migration 20261207000300_sqlite_int_times). The
// events projection's rows and index entries are shorter for it (each
// time 8 bytes instead of 25-32), and its rows insert 1.1-1.2x as fast
// (bench/narrowings.go, "times as int64 µs"). The order is the same, a
// bound time is written the same way (the DSN's _time_integer_format),
// and a TIMESTAMP or DATE column reads back as the time (_inttotime).
type sqliteDialect struct{ *sqlitedialect.Dialect }

func (sqliteDialect) AppendTime(b []byte, tm time.Time) []byte {
	return strconv.AppendInt(b, tm.UnixMicro(), 10)
}

// Optimize refreshes SQLite's planner statistics where they are missing or
// stale; PostgreSQL's autovacuum keeps its own. Without them SQLite may read
// a covering index whole (every event of a project) instead of a time range
// of it. Sampling (analysis_limit) keeps it to milliseconds on a large file.
func (db *DB) Optimize(ctx context.Context, tables ...string) error {
	if db.Dialect != SQLite {
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("optimizing sqlite: %w", err)
	}
	defer conn.Close()
	stmts := []string{"PRAGMA analysis_limit = 1000"}
	if len(tables) == 0 {
		stmts = append(stmts, "PRAGMA optimize = 0x10002")
	}
	for _, t := range tables {
		stmts = append(stmts, fmt.Sprintf("ANALYZE main.%q", t))
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("optimizing sqlite: %s: %w", s, err)
		}
	}
	return nil
}

// Checkpoint copies what SQLite's write-ahead log holds back into the
// database file without waiting for readers or writers (a PASSIVE
// checkpoint), and returns how many frames the log held and how many of
// them are now in the file. Run off the writers' path, it keeps their
// commits from doing it: a commit that crosses wal_autocheckpoint copies
// the whole log first, which stalled the events projection for 150–450 ms
// every few seconds. On PostgreSQL it does nothing.
func (db *DB) Checkpoint(ctx context.Context) (logFrames, checkpointed int, err error) {
	if db.Dialect != SQLite {
		return 0, 0, nil
	}
	var busy int
	row := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	if err := row.Scan(&busy, &logFrames, &checkpointed); err != nil {
		return 0, 0, fmt.Errorf("checkpointing sqlite: %w", err)
	}
	return logFrames, checkpointed, nil
}

func pingWithin(ctx context.Context, db *DB, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return db.PingContext(ctx)
}

// Ping checks the database answers a query; readiness probes use it.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.NewRaw("SELECT 1").Scan(ctx, &one); err != nil {
		return fmt.Errorf("database ping: %w", err)
	}
	return nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}
