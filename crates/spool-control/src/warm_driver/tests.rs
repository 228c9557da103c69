//! Which jobs a pre-warmed driver takes, case by case: each row is a change to a job that fits
//! the pool, and the table shows the settings applied or why it runs with `spark-submit`.

use expect_test::expect;
use serde_json::{Value, json};
use spool_core::MemoryMb;

use super::*;

fn pool_sizing() -> SparkSizing {
    crate::config::default_prewarm_sizing()
}

/// A job that fits the pool, as its stored spec.
fn spec(change: &dyn Fn(&mut Value)) -> JobSpec {
    let mut spec = json!({
        "code": "snapshot:0",
        "entry": {"file": "main.py"},
        "conf": {
            "spark.driver.cores": 1,
            "spark.driver.memory": "1g",
            "spark.executor.cores": 1,
            "spark.executor.memory": "1g",
            "spark.executor.instances": 1
        }
    });
    change(&mut spec);
    serde_json::from_value(spec).expect("a job spec")
}

type Change = Box<dyn Fn(&mut Value)>;

/// One job: a change to a job that fits the pool, and what it asks for besides its spec.
struct Case {
    name: &'static str,
    change: Change,
    runtime: &'static str,
    compute: &'static str,
    environment: bool,
    sizing: SparkSizing,
    pool_size: u32,
}

/// A case that changes only the spec.
fn case(name: &'static str, change: impl Fn(&mut Value) + 'static) -> Case {
    Case {
        name,
        change: Box::new(change),
        runtime: "3.4",
        compute: "serverless",
        environment: false,
        sizing: pool_sizing(),
        pool_size: 1,
    }
}

fn conf(name: &'static str, key: &'static str, value: Value) -> Case {
    case(name, move |s| s["conf"][key] = value.clone())
}

#[test]
fn which_jobs_fit_a_warm_driver() {
    let cases = vec![
        case("fits", |_| {}),
        conf(
            "runtime-settable conf",
            "spark.sql.shuffle.partitions",
            json!(4),
        ),
        conf("static sql conf", "spark.sql.extensions", json!("x.Ext")),
        conf(
            "catalog conf",
            "spark.sql.catalog.local",
            json!("x.Catalog"),
        ),
        conf("core conf", "spark.serializer", json!("x.Kryo")),
        conf("deploy mode", "spark.submit.deployMode", json!("client")),
        conf("opted out", WARM_DRIVER_CONF, json!(false)),
        conf("opted in explicitly", WARM_DRIVER_CONF, json!("true")),
        case("jvm entry", |s| {
            s["entry"] = json!({"class_name": "org.example.Main"});
            s["jars"] = json!(["main.jar"]);
        }),
        case("jars", |s| s["jars"] = json!(["lib.jar"])),
        case("archives", |s| s["archives"] = json!(["env.zip"])),
        case("py_files and files", |s| {
            s["py_files"] = json!(["helpers.py"]);
            s["files"] = json!(["data.txt"]);
        }),
        Case {
            runtime: "3.5",
            ..case("other runtime", |_| {})
        },
        Case {
            compute: "pool-a",
            ..case("attached pool", |_| {})
        },
        Case {
            environment: true,
            ..case("environment", |_| {})
        },
        Case {
            sizing: SparkSizing {
                executor_instances: 2,
                ..pool_sizing()
            },
            ..case("two executors", |_| {})
        },
        Case {
            sizing: SparkSizing {
                driver_memory: MemoryMb(2048),
                ..pool_sizing()
            },
            ..case("bigger driver", |_| {})
        },
        Case {
            pool_size: 0,
            ..case("no pool", |_| {})
        },
    ];
    let mut table = String::new();
    let pool_sizing = pool_sizing();
    for case in &cases {
        let spec = spec(case.change.as_ref());
        let outcome = fit(
            &Ask {
                runtime: case.runtime,
                compute: case.compute,
                environment: case.environment,
                sizing: &case.sizing,
                spec: &spec,
            },
            &Pool {
                runtime: "3.4",
                sizing: &pool_sizing,
                size: case.pool_size,
            },
        );
        let shown = match outcome {
            Ok(conf) => format!("warm driver, conf {conf:?}"),
            Err(reason) => format!("spark-submit: {reason}"),
        };
        table.push_str(&format!("{}: {shown}\n", case.name));
    }
    expect![[r#"
        fits: warm driver, conf {}
        runtime-settable conf: warm driver, conf {"spark.sql.shuffle.partitions": "4"}
        static sql conf: spark-submit: `spark.sql.extensions` is fixed when the SparkContext starts
        catalog conf: spark-submit: `spark.sql.catalog.local` is fixed when the SparkContext starts
        core conf: spark-submit: `spark.serializer` is fixed when the SparkContext starts
        deploy mode: spark-submit: `spark.submit.deployMode` is a spark-submit setting
        opted out: spark-submit: `spark.spool.warmDriver: false` asks for spark-submit
        opted in explicitly: warm driver, conf {}
        jvm entry: spark-submit: a JVM job (`entry.class_name: org.example.Main`) starts its own JVM
        jars: spark-submit: `jars` join the driver's class path when it starts
        archives: spark-submit: `archives` are unpacked when the driver starts
        py_files and files: warm driver, conf {}
        other runtime: spark-submit: pre-warmed drivers run runtime 3.4, the job asks for 3.5
        attached pool: spark-submit: it runs on attached pool `pool-a`
        environment: spark-submit: it names an environment; pre-warmed drivers run the runtime's own Python
        two executors: spark-submit: it asks for a 1-core 1 GiB driver and 2 executor(s) of 1 core(s), 1 GiB; pre-warmed drivers have a 1-core 1 GiB driver and 1 executor(s) of 1 core(s), 1 GiB
        bigger driver: spark-submit: it asks for a 1-core 2 GiB driver and 1 executor(s) of 1 core(s), 1 GiB; pre-warmed drivers have a 1-core 1 GiB driver and 1 executor(s) of 1 core(s), 1 GiB
        no pool: spark-submit: the server keeps no pre-warmed drivers (`--prewarm 0`)
    "#]].assert_eq(&table);
}
