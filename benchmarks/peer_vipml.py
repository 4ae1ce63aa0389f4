"""vipml on the same customer subset as peer_featuretools.py (run with the project environment).

python benchmarks/peer_vipml.py benchmarks/.data/peer_orders.parquet 10000 2024-06-01
"""

import json
import resource
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vipml import load_tables
from vipml.features import build_features

path, n, as_of = sys.argv[1], int(sys.argv[2]), sys.argv[3]
col = pq.read_table(path, columns=["customer_id"]).column("customer_id")
ids = sorted(str(v) for v in pc.unique(col).to_pylist())[:n]
del col
o = pq.read_table(
    path,
    columns=["order_id", "customer_id", "ordered_at", "amount"],
    filters=pc.field("customer_id").isin(pa.array(ids, type=pa.string())),
).to_pandas()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
t, _ = load_tables({"orders": o})
load_s = time.perf_counter() - t0
t0 = time.perf_counter()
f = build_features(t, as_of=as_of)
s = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
rows = int((o.ordered_at < pd.Timestamp(as_of, tz="UTC")).sum())
print(
    json.dumps(
        {
            "customers": len(ids),
            "rows": rows,
            "seconds": round(s, 4),
            "load_tables_seconds": round(load_s, 4),
            "peak_mib": round(peak, 1),
            "peak_before_mib": round(before, 1),
            "shape": list(f.shape),
            "pandas": pd.__version__,
        }
    )
)
