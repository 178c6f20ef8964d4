package policy

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/env"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// CEL's standard timestamp accessors with a time zone (getHours("Europe/
// Paris"), ...) load the zone from the system on every call, which costs
// more than the rest of a decision. The policy environment replaces those
// overloads with the same functions, same ids and same results, over a
// cache of loaded zones.

type tzAccessor struct {
	fn, id string
	get    func(time.Time) int64
}

var tzAccessors = []tzAccessor{
	{"getFullYear", "timestamp_to_year_with_tz", func(t time.Time) int64 { return int64(t.Year()) }},
	{"getMonth", "timestamp_to_month_with_tz", func(t time.Time) int64 { return int64(t.Month()) - 1 }},
	{"getDayOfYear", "timestamp_to_day_of_year_with_tz", func(t time.Time) int64 { return int64(t.YearDay()) - 1 }},
	{"getDayOfMonth", "timestamp_to_day_of_month_with_tz", func(t time.Time) int64 { return int64(t.Day()) - 1 }},
	{"getDate", "timestamp_to_day_of_month_1_based_with_tz", func(t time.Time) int64 { return int64(t.Day()) }},
	{"getDayOfWeek", "timestamp_to_day_of_week_with_tz", func(t time.Time) int64 { return int64(t.Weekday()) }},
	{"getHours", "timestamp_to_hours_with_tz", func(t time.Time) int64 { return int64(t.Hour()) }},
	{"getMinutes", "timestamp_to_minutes_with_tz", func(t time.Time) int64 { return int64(t.Minute()) }},
	{"getSeconds", "timestamp_to_seconds_tz", func(t time.Time) int64 { return int64(t.Second()) }},
	{"getMilliseconds", "timestamp_to_milliseconds_with_tz", func(t time.Time) int64 { return int64(t.Nanosecond() / 1e6) }},
}

// stdLibWithCachedZones is the standard library without the zone
// overloads, plus ours.
func stdLibWithCachedZones() []cel.EnvOption {
	sub := env.NewLibrarySubset()
	for _, a := range tzAccessors {
		sub.AddExcludedFunctions(env.NewFunction(a.fn, &env.Overload{ID: a.id}))
	}
	opts := []cel.EnvOption{cel.StdLib(cel.StdLibSubset(sub))}
	for _, a := range tzAccessors {
		get := a.get
		opts = append(opts, cel.Function(a.fn, cel.MemberOverload(a.id, []*cel.Type{cel.TimestampType, cel.StringType}, cel.IntType,
			cel.BinaryBinding(func(ts, tz ref.Val) ref.Val {
				t, ok := ts.(types.Timestamp)
				if !ok {
					return types.MaybeNoSuchOverloadErr(ts)
				}
				s, ok := tz.(types.String)
				if !ok {
					return types.MaybeNoSuchOverloadErr(tz)
				}
				loc, err := zone(string(s))
				if err != nil {
					return types.WrapErr(err)
				}
				return types.Int(get(t.Time.In(loc)))
			}))))
	}
	return opts
}

var zones sync.Map // name -> *time.Location

// maxZones bounds the cache (zone names come from policies, not callers,
// but a condition could build them from arguments).
const maxZones = 512

var zoneCount int64
var zoneMu sync.Mutex

// zone resolves an IANA zone name or a "+hh:mm" / "-hh:mm" offset, as
// CEL's timestamp accessors do.
func zone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	var loc *time.Location
	if i := strings.Index(name, ":"); i >= 0 {
		hr, err1 := strconv.Atoi(name[:i])
		mn, err2 := strconv.Atoi(name[i+1:])
		if err1 != nil || err2 != nil || hr < -23 || hr > 23 || mn < 0 || mn > 59 {
			return nil, fmt.Errorf("invalid time zone offset %q (want ±hh:mm)", name)
		}
		off := hr*3600 + mn*60
		if strings.HasPrefix(name, "-") {
			off = hr*3600 - mn*60
		}
		loc = time.FixedZone(name, off)
	} else {
		l, err := time.LoadLocation(name)
		if err != nil {
			return nil, err
		}
		loc = l
	}
	zoneMu.Lock()
	if zoneCount < maxZones {
		zones.Store(name, loc)
		zoneCount++
	}
	zoneMu.Unlock()
	return loc, nil
}
