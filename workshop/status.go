package workshop

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/internal/engine"
	"github.com/doublehop/doublehop/lab"
	"github.com/moby/moby/api/types/swarm"
)

// SeatStatus is one seat's health as `workshop status` shows it.
type SeatStatus struct {
	N                int
	Running, Desired int            // tasks, over the seat's four services
	Tiers            map[string]int // running tasks by role
	Ports            Ports
	Err              error // nil when every published port answers
}

// Healthy reports whether every tier runs and every port answers.
func (s SeatStatus) Healthy() bool { return s.Err == nil && s.Running == s.Desired && s.Desired > 0 }

// Line is the seat's status on one line.
func (s SeatStatus) Line() string {
	state := "healthy"
	if !s.Healthy() {
		state = "NOT HEALTHY"
		if s.Err != nil {
			state += ": " + s.Err.Error()
		}
	}
	var tiers []string
	for _, r := range dockerlab.Roles {
		tiers = append(tiers, fmt.Sprintf("%s %d", r, s.Tiers[r]))
	}
	return fmt.Sprintf("seat %d: %d/%d tasks (%s), web :%d kdc :%d — %s", s.N, s.Running, s.Desired, strings.Join(tiers, ", "), s.Ports.Web, s.Ports.KDC, state)
}

// Status reads the workshop's seats from the swarm (services by label, ports
// from their endpoints) and probes each seat's published ports at address.
func Status(ctx context.Context, name, address string) ([]SeatStatus, error) {
	if address == "" {
		address = "127.0.0.1"
	}
	cli, err := dockerlab.APIClient(ctx)
	if err != nil {
		return nil, err
	}
	sl, err := cli.ServiceList(ctx, make(engine.Filters).Add("label", LabelWorkshop+"="+name), true)
	if err != nil {
		return nil, err
	}
	seats := map[int]*SeatStatus{}
	for _, svc := range sl {
		n, err := strconv.Atoi(svc.Spec.Labels[LabelSeat])
		if err != nil {
			continue
		}
		st := seats[n]
		if st == nil {
			st = &SeatStatus{N: n, Tiers: map[string]int{}}
			seats[n] = st
		}
		if svc.ServiceStatus != nil {
			st.Running += int(svc.ServiceStatus.RunningTasks)
			st.Desired += int(svc.ServiceStatus.DesiredTasks)
			st.Tiers[svc.Spec.Labels[dockerlab.LabelRole]] = int(svc.ServiceStatus.RunningTasks)
		}
		if svc.Spec.EndpointSpec != nil {
			for _, p := range svc.Spec.EndpointSpec.Ports {
				setPort(&st.Ports, p)
			}
		}
	}
	var out []SeatStatus
	found := map[int]bool{}
	for n := range seats {
		found[n] = true
	}
	for _, n := range sortedSeats(found) {
		st := seats[n]
		s := &Seat{N: n, Ports: st.Ports, Address: address}
		st.Err = s.check(ctx)
		out = append(out, *st)
	}
	return out, nil
}

func setPort(p *Ports, pc swarm.PortConfig) {
	v := int(pc.PublishedPort)
	switch int(pc.TargetPort) {
	case 88:
		p.KDC = v
	case 80:
		p.Web = v
	case lab.LDAPPort:
		p.LDAP = v
	case lab.LDAPSPort:
		p.LDAPS = v
	default:
		p.SQL = v
	}
}
