// Package pgtest runs a throwaway PostgreSQL server for tests: initdb and
// pg_ctl in a temporary directory, its socket there and a free loopback
// port, one database per test. The server starts at the first test that
// asks for a database and stops when the package's tests end (Main).
// Run as root, the server runs as the postgres user, since initdb refuses
// root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// install is what to do when the server's programs are missing.
const install = "install PostgreSQL's server (Debian: apt-get install -y postgresql-15)"

// Server is a running throwaway server.
type Server struct {
	dir, bin string
	port     int
	owner    *user.User // the OS user the server runs as; nil: this process's
	dbs      atomic.Int64
}

var (
	once    sync.Once
	shared  *Server
	sharedE error
)

// Main runs the package's tests and stops the server if one started: call
// it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// Database creates an empty database for t on the package's server,
// starting it when needed, and returns its URL. It is dropped when t ends.
func Database(t testing.TB) string {
	t.Helper()
	once.Do(func() { shared, sharedE = Start() })
	if sharedE != nil {
		t.Fatalf("pgtest: %v", sharedE)
	}
	url, err := shared.CreateDatabase(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = shared.DropDatabase(context.Background(), url) })
	return url
}

// Start initialises and starts a server in a new temporary directory.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		if s.owner, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root, the server must run as the postgres user, which is missing (%v): %s", err, install)
		}
	}
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, err
	}
	if err := s.chown(s.dir); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	if s.port, err = freePort(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	data := filepath.Join(s.dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// Durability is off: the server lives for one test run.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", s.port, s.dir)
	if out, err := s.run("pg_ctl", "-D", data, "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return s, nil
}

// URL is the address of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// CreateDatabase creates an empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := "test" + strconv.FormatInt(s.dbs.Add(1), 10)
	if err := s.admin(ctx, `CREATE DATABASE `+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// CopyDatabase makes the database at to (by URL) a copy of the one at
// from, replacing it; no one may be connected to either.
func (s *Server) CopyDatabase(ctx context.Context, from, to string) error {
	src, err := pgx.ParseConfig(from)
	if err != nil {
		return err
	}
	if err := s.DropDatabase(ctx, to); err != nil {
		return err
	}
	dst, err := pgx.ParseConfig(to)
	if err != nil {
		return err
	}
	return s.admin(ctx, `CREATE DATABASE `+pgx.Identifier{dst.Database}.Sanitize()+` TEMPLATE `+pgx.Identifier{src.Database}.Sanitize())
}

// Copy is CopyDatabase on the package's server, for test t.
func Copy(t testing.TB, from, to string) {
	t.Helper()
	if err := shared.CopyDatabase(context.Background(), from, to); err != nil {
		t.Fatalf("pgtest: copy %s to %s: %v", from, to, err)
	}
}

// DropDatabase drops the database at url, closing its connections.
func (s *Server) DropDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	return s.admin(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{cfg.Database}.Sanitize()+` WITH (FORCE)`)
}

// Shared is the package's server, started by Database; nil before.
func Shared() *Server { return shared }

func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() error {
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// run runs one of the server's programs, as the server's owner.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, prog)
	if s.owner != nil {
		args = append([]string{"-u", s.owner.Username, "--", path}, args...)
		path = "runuser"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *Server) chown(dir string) error {
	if s.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(s.owner.Uid)
	gid, _ := strconv.Atoi(s.owner.Gid)
	return os.Chown(dir, uid, gid)
}

// binDir finds initdb: on the PATH, else in Debian's versioned directory.
func binDir() (string, error) { return findBin(exec.LookPath, "/usr/lib/postgresql/*/bin") }

// findBin finds initdb through lookPath, else in the newest directory
// glob matches.
func findBin(lookPath func(string) (string, error), glob string) (string, error) {
	if p, err := lookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob(glob)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("initdb not found on the PATH nor in " + glob + ": " + install)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// CPU is the processor time the server has used: the postmaster's own and
// that of its backends that have exited (Linux's /proc). A benchmark
// reads it before and after a workload whose connections it closed.
func (s *Server) CPU() (time.Duration, error) {
	pidFile, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	pid, _, _ := strings.Cut(string(pidFile), "\n")
	stat, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// After the command's closing parenthesis: state is field 3, utime,
	// stime, cutime and cstime are 14 to 17.
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if len(f) < 15 {
		return 0, fmt.Errorf("unexpected /proc stat of the postmaster: %q", stat)
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc stat of the postmaster: %q", stat)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is Linux's USER_HZ, the unit of /proc's times.
const clockTicks = 100
