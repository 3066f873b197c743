package main

import (
	dto "github.com/prometheus/client_model/go"
)

// sumMetric adds up every series of the counter or gauge family name whose
// labels include label (any value), or all series when label is empty.
func sumMetric(mfs []*dto.MetricFamily, name, label string) float64 {
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && labelValue(m, label) == "" {
				continue
			}
			sum += value(m)
		}
	}
	return sum
}

// byLabel returns the family's values keyed by one label's value.
func byLabel(mfs []*dto.MetricFamily, name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelValue(m, label)] += value(m)
		}
	}
	return out
}

func labelValue(m *dto.Metric, label string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == label {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
