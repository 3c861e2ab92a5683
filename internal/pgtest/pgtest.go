// Package pgtest starts a real PostgreSQL for tests: one throwaway server
// per test binary (initdb + pg_ctl in a temp directory, listening only on a
// unix socket there), a fresh database per test, stopped by pid at the end.
//
// The server comes from the Debian postgresql package (make test installs
// it). When it is missing, Available says why; with the env var CI set that
// is a failure, elsewhere the PostgreSQL half of a test is skipped.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// binDirs are where Debian puts the server programs, newest first.
var binDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// Server is one running PostgreSQL.
type Server struct {
	dir  string // temp directory: data/ and the socket
	bin  string
	cred *syscall.Credential // the postgres user when we are root
	pid  int
	port int

	mu    sync.Mutex
	admin *sql.DB
	n     int
}

var (
	once    sync.Once
	shared  *Server
	started error
)

// Shared starts the package's server on first use and returns it; Stop it
// from TestMain (see StopShared).
func Shared() (*Server, error) {
	once.Do(func() { shared, started = Start() })
	return shared, started
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Required reports whether a missing PostgreSQL fails the tests (in CI).
func Required() bool { return os.Getenv("CI") != "" }

// Start runs initdb and pg_ctl in a new temp directory. The server listens
// on a unix socket in that directory only, so parallel test binaries never
// contend for a port.
func Start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, bin: bin, port: 5432}
	if err := s.start(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func findBin() (string, error) {
	for _, d := range binDirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgtest: PostgreSQL not installed (Debian package postgresql)")
}

func (s *Server) start() error {
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: hand the directory to the
		// postgres user and run the programs as that user.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("pgtest: running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(s.dir, "data")
	if err := s.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		return err
	}
	if err := s.Resume(); err != nil {
		return err
	}
	admin, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.admin = admin
	return nil
}

func (s *Server) run(prog string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pgtest: %s: %w\n%s%s", prog, err, out, log)
	}
	return nil
}

// postmasterPID reads the server's pid from the first line of
// postmaster.pid.
func (s *Server) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("pgtest: postmaster.pid: %w", err)
	}
	return pid, nil
}

// DSN is the connection string of database name on this server.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, s.port, name)
}

// NewDatabase creates an empty database and returns its DSN.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("t%d", s.n)
	s.mu.Unlock()
	if _, err := s.admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.DSN(name), nil
}

// Pause stops the server the way an outage would (fast shutdown, every
// connection dropped) and Resume starts it again on the same data, for
// tests of a node that loses its database.
func (s *Server) Pause() error {
	if err := s.stopPID(); err != nil {
		return err
	}
	s.pid = 0
	return nil
}

// Resume starts the server (again) on its data directory. It is durable
// enough for tests only: no fsync.
func (s *Server) Resume() error {
	data := filepath.Join(s.dir, "data")
	opts := strings.Join([]string{
		"-k " + s.dir, "-c listen_addresses=''", "-p " + strconv.Itoa(s.port),
		"-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
		"-c max_connections=300", "-c shared_buffers=32MB",
	}, " ")
	if err := s.run("pg_ctl", "-D", data, "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return err
	}
	pid, err := s.postmasterPID()
	if err != nil {
		return err
	}
	s.pid = pid
	return nil
}

// Stop shuts the server down by its pid and removes its directory.
func (s *Server) Stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.pid != 0 {
		s.stopPID()
	}
	os.RemoveAll(s.dir)
}

// stopPID asks the postmaster for a fast shutdown (SIGINT) and waits for
// it to go, killing it when it does not within 30 s.
func (s *Server) stopPID() error {
	p, err := os.FindProcess(s.pid)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGINT); err != nil {
		return nil // already gone
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.Signal(syscall.Signal(0)); err != nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Signal(syscall.SIGKILL)
	return fmt.Errorf("pgtest: server %d did not stop in 30 s", s.pid)
}
