"""Wrangle the Titanic passenger list with the pandas API on Spark.

Reads the CSV given by --titanic_data, fills missing cabins, drops rows that still have gaps,
and writes the result as CSV part files into --wrangled_data.
"""

import argparse

import pyspark.pandas as ps
from pyspark.sql import SparkSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--titanic_data", required=True)
    parser.add_argument("--wrangled_data", required=True)
    args = parser.parse_args()

    spark = SparkSession.builder.appName("titanic-wrangling").getOrCreate()
    frame = ps.read_csv(args.titanic_data, index_col="PassengerId")
    frame["Cabin"] = frame["Cabin"].fillna("None")
    frame = frame.dropna()
    print(f"rows after wrangling: {len(frame)}")
    frame.to_csv(args.wrangled_data)
    spark.stop()


if __name__ == "__main__":
    main()
