package dockerlab

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/provision"
	"github.com/doublehop/doublehop/scenarios"
)

// Paths inside the containers and the hosts' roles (package provision).
const (
	StateDir     = provision.StateDir
	DirectoryYML = provision.DirectoryYML
	ConfDir      = provision.ConfDir
	Krb5ConfPath = provision.Krb5ConfPath
	ClientState  = provision.ClientState
	Binary       = provision.Binary

	RoleKDC    = provision.RoleKDC
	RoleWeb    = provision.RoleWeb
	RoleSQL    = provision.RoleSQL
	RoleClient = provision.RoleClient
)

// Roles lists the tiers in start order.
var Roles = provision.Roles

// File is one file to put into a container.
type File = provision.File

// KeytabPath is a tier's keytab in its container.
func KeytabPath(role string) string { return provision.KeytabPath(role) }

// SettingsPath is a tier's settings file in its container.
func SettingsPath(role string) string { return provision.SettingsPath(role) }

// tierSpec is what one container gets: command, files, port, ready line.
type tierSpec struct {
	role  string
	host  directory.Host
	port  string   // container port published on the host ("88/tcp"); "" for ws01
	extra []string // more published ports (the DC's LDAP and LDAPS, "389/tcp", "636/tcp")
	cmd   []string
	files []File
	ready string
}

func (t tierSpec) domain() string {
	_, d, _ := strings.Cut(t.host.Name, ".")
	return d
}

// plan is provision.Plan as the containers' specs.
func plan(l *directory.Lab) ([]tierSpec, error) {
	tiers, err := provision.Plan(l)
	if err != nil {
		return nil, err
	}
	out := make([]tierSpec, len(tiers))
	for i, t := range tiers {
		out[i] = tierSpec{role: t.Role, host: t.Host, port: t.Port, extra: t.Extra, cmd: t.Cmd, files: t.Files, ready: t.Ready}
	}
	return out, nil
}

func hostKrb5Conf(l *directory.Lab, kdcAddr string) string { return provision.HostKrb5Conf(l, kdcAddr) }

// applySetup runs admin commands (a scenario's setup) on a lab file, on the
// host, before any container starts.
func applySetup(l *directory.Lab, setup []string) (*directory.Lab, error) {
	if len(setup) == 0 {
		return l, nil
	}
	dir, err := os.MkdirTemp("", "doublehop-setup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s, err := directory.Open(dir, l)
	if err != nil {
		return nil, err
	}
	for _, c := range setup {
		args, err := SplitArgs(c)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		if err := admin.Run(s, args, &out); err != nil {
			return nil, fmt.Errorf("setup %q: %v\n%s", c, err, out.String())
		}
	}
	b, err := os.ReadFile(s.Path())
	if err != nil {
		return nil, err
	}
	return directory.Parse(b)
}

// SplitArgs splits a command line the way the scenario files do.
func SplitArgs(s string) ([]string, error) { return scenarios.SplitArgs(s) }
