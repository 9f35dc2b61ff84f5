// Package rabbittest runs a real RabbitMQ broker (Debian's
// rabbitmq-server) for a test: a node of its own, on loopback only, with
// its configuration, data, logs, Erlang cookie and epmd in the test's
// temporary directory, started as a child process and killed by process
// group id at the end. It owns nothing a production build uses.
package rabbittest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ServerBin is the node's start script, called directly rather than
// through /usr/sbin/rabbitmq-server (which switches to the rabbitmq user
// and the system's directories).
const ServerBin = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// Options configure a broker.
type Options struct {
	// User and Password are the broker's only user (administrator of
	// vhost /). Defaults "posgate" and a fixed test password.
	User, Password string
	// TLS, if set, opens an amqps listener with this certificate and key
	// (PEM files).
	CertFile, KeyFile string
}

// Server is one running (or stopped) broker.
type Server struct {
	t       testing.TB
	dir     string
	env     []string
	Port    int // amqp:// on 127.0.0.1
	TLSPort int // amqps:// on 127.0.0.1, 0 without TLS
	opts    Options
	node    *proc
	epmd    *proc
}

// proc is a started process group and the channel its Wait closes.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func start(cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Available reports whether rabbitmq-server and epmd are installed.
func Available() bool {
	_, err := os.Stat(ServerBin)
	_, err2 := exec.LookPath("epmd")
	return err == nil && err2 == nil
}

// Require skips the test when RabbitMQ is not installed, and fails it
// under CI=true, where .ci/run installs it.
func Require(t testing.TB) {
	t.Helper()
	if Available() {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("POSGATE_RABBITMQ_REQUIRED") != "" {
		t.Fatalf("%s or epmd missing: .ci/run installs the rabbitmq-server package", ServerBin)
	}
	t.Skipf("%s not installed (apt-get install rabbitmq-server)", ServerBin)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts a broker and waits until it accepts an AMQP login; the
// broker is killed at cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	if opts.User == "" {
		opts.User, opts.Password = "posgate", "rabbit-test-pw-1"
	}
	dir := t.TempDir()
	s := &Server{t: t, dir: dir, opts: opts, Port: freePort(t)}
	epmdPort, distPort := freePort(t), freePort(t)
	conf := []string{
		"listeners.tcp.default = 127.0.0.1:" + strconv.Itoa(s.Port),
		"default_user = " + opts.User,
		"default_pass = " + opts.Password,
		"loopback_users = none",
		"log.console = false",
		"log.file.level = warning",
		"disk_free_limit.absolute = 10MB",
	}
	if opts.CertFile != "" {
		s.TLSPort = freePort(t)
		conf = append(conf,
			"listeners.ssl.default = 127.0.0.1:"+strconv.Itoa(s.TLSPort),
			"ssl_options.certfile = "+opts.CertFile,
			"ssl_options.keyfile = "+opts.KeyFile,
			"ssl_options.verify = verify_none",
			"ssl_options.fail_if_no_peer_cert = false")
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s.env = append(os.Environ(),
		"HOME="+dir, // the Erlang cookie
		"RABBITMQ_NODENAME=posgate"+strconv.Itoa(s.Port)+"@localhost",
		"RABBITMQ_USE_LONGNAME=false",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(s.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"RABBITMQ_CONFIG_FILE="+write("rabbitmq.conf", strings.Join(conf, "\n")+"\n"),
		"RABBITMQ_CONF_ENV_FILE="+write("rabbitmq-env.conf", ""),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+write("enabled_plugins", "[].\n"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(dir, "plugins-expand"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbit.pid"),
		// exec the VM directly (no signal-forwarding shell in between),
		// so the process started here is the node.
		"RUNNING_UNDER_SYSTEMD=true",
	)
	// The test's own epmd, on loopback, so the node never registers with
	// (or starts) a machine-wide one.
	epmd, err := start(exec.Command("epmd", "-address", "127.0.0.1", "-port", strconv.Itoa(epmdPort)))
	if err != nil {
		t.Fatalf("start epmd: %v", err)
	}
	s.epmd = epmd
	t.Cleanup(func() { kill(s.epmd) })
	t.Cleanup(s.Kill)
	s.Restart()
	return s
}

// Restart starts the node again (on the same data directory and ports)
// and waits until it takes an AMQP login.
func (s *Server) Restart() {
	s.t.Helper()
	log, err := os.OpenFile(filepath.Join(s.dir, "node.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(ServerBin)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = s.env, s.dir, log, log
	p, err := start(cmd)
	if err != nil {
		s.t.Fatalf("start %s: %v", ServerBin, err)
	}
	s.node = p
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := amqp.DialConfig(s.AdminURL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.exited:
			out, _ := os.ReadFile(filepath.Join(s.dir, "node.out"))
			s.t.Fatalf("rabbitmq-server exited before it was ready:\n%s", tail(out))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(s.dir, "node.out"))
			s.Kill()
			s.t.Fatalf("rabbitmq-server not ready within 90 s (%v):\n%s", err, tail(out))
		}
	}
}

// Kill kills the node at once (SIGKILL to its process group, as a power
// cut or an OOM kill would) and waits for it. Messages the broker
// confirmed must survive this.
func (s *Server) Kill() {
	kill(s.node)
	s.node = nil
}

// kill sends SIGKILL to p's process group (the VM and its helpers such
// as erl_child_setup) and waits until the leader is reaped and the rest
// of the group is gone, so a restart finds its ports free.
func kill(p *proc) {
	if p == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && syscall.Kill(-pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the broker's amqp:// address (no credentials: they are the
// endpoint's, sealed).
func (s *Server) URL() string { return "amqp://127.0.0.1:" + strconv.Itoa(s.Port) + "/" }

// AdminURL is the amqp:// address with the test user's credentials.
func (s *Server) AdminURL() string {
	return fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", s.opts.User, s.opts.Password, s.Port)
}

// Dial connects as the test user (for the test's own consumer and set-up).
func (s *Server) Dial(ctx context.Context) (*amqp.Connection, error) {
	return amqp.DialConfig(s.AdminURL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
