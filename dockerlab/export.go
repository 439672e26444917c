package dockerlab

import (
	"context"
	"io"

	"github.com/doublehop/doublehop/directory"
	"github.com/moby/moby/client"
)

// TierPlan is what one tier's container gets from a lab file: its host, the
// command after the image's entrypoint, the files it holds (keytab, settings,
// the directory, krb5.conf), its ports and the log line that says it is
// ready. Other orchestrators (the workshop on Docker Swarm) start the same
// tiers from it.
type TierPlan struct {
	Role  string
	Host  directory.Host
	Port  string   // the tier's own port ("88/tcp"); "" for ws01
	Extra []string // more ports (the DC's LDAP and LDAPS)
	Cmd   []string
	Files []File
	Ready string
}

// Plan turns a lab file into its tiers, in start order (dc, web, sql, ws01),
// each with only what its real counterpart would hold.
func Plan(l *directory.Lab) ([]TierPlan, error) {
	specs, err := plan(l)
	if err != nil {
		return nil, err
	}
	out := make([]TierPlan, len(specs))
	for i, s := range specs {
		out[i] = TierPlan{Role: s.role, Host: s.host, Port: s.port, Extra: s.extra, Cmd: s.cmd, Files: s.files, Ready: s.ready}
	}
	return out, nil
}

// APIClient is the Docker API client the labs use (DOCKER_HOST, contexts),
// checked with a ping.
func APIClient(ctx context.Context) (*client.Client, error) { return dockerClient(ctx) }

// ExecIn runs the doublehop binary with args in a container by id, as
// `docker exec ID /doublehop ARGS`.
func ExecIn(ctx context.Context, cli *client.Client, id string, stdin io.Reader, args ...string) (ExecResult, error) {
	return execIn(ctx, cli, id, append([]string{Binary}, args...), stdin)
}

// HostKrb5Conf is krb5.conf for a machine outside the lab that reaches the
// KDC at kdcAddr over TCP only (only TCP is published).
func HostKrb5Conf(l *directory.Lab, kdcAddr string) string { return hostKrb5Conf(l, kdcAddr) }
