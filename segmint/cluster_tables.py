"""The clustering tables' contract: schema ``ml``, fixed and typed.

dbt reads them as sources (models/staging/ml/) and BI tools query them; segmint/clusters.py
writes them. Kept apart from the clustering code so that the Dagster code location can
name the tables without importing scikit-learn.
"""

FEATURES_RELATION = "marts.customer_features"

TABLES = {
    "customer_clusters": """
        customer_id varchar primary key,
        segment_id bigint not null,
        segment_name varchar not null,
        confidence double not null,
        reason_codes varchar not null,
        model_version varchar not null,
        scored_at timestamp not null""",
    "segmentation_runs": """
        run_id varchar primary key,
        algorithm varchar not null,
        k bigint not null,
        criterion varchar not null,
        k_selection varchar not null,
        preprocessing varchar not null,
        scores varchar not null,
        silhouette double,
        davies_bouldin double,
        calinski_harabasz double,
        scored_rows bigint not null,
        fit_rows bigint not null,
        unassigned_rows bigint not null,
        features varchar not null,
        dropped_features varchar,
        config varchar not null,
        data_fingerprint varchar not null,
        previous_run_id varchar,
        matching varchar not null,
        customers_compared bigint not null,
        switched_share double,
        adjusted_rand_index_previous double,
        model_path varchar,
        trained_at timestamp not null""",
    "cluster_profiles": """
        run_id varchar not null,
        segment_id bigint not null,
        segment_name varchar not null,
        size bigint not null,
        share double not null,
        description varchar not null,
        feature_summary varchar not null,
        primary key (run_id, segment_id)""",
    "cluster_centroids": """
        run_id varchar not null,
        segment_id bigint not null,
        space varchar not null,
        dimension bigint not null,
        dimension_name varchar not null,
        value double not null,
        primary key (run_id, segment_id, space, dimension)""",
    "cluster_scaling": """
        run_id varchar not null,
        position bigint not null,
        prepared_name varchar not null,
        input_column varchar not null,
        transform varchar not null,
        category varchar,
        impute_value double,
        frequent_categories varchar,
        center double not null,
        scale double not null,
        primary key (run_id, position)""",
    "cluster_projection": """
        run_id varchar not null,
        component bigint not null,
        position bigint not null,
        weight double not null,
        mean double not null,
        primary key (run_id, component, position)""",
}

# The fitted model of each run, kept in the warehouse beside its tables: the next run reuses
# its preprocessing from here, whichever machine fits it (a Dagster worker, CI), and a local
# folder is only a copy to inspect. joblib bytes, base64 text in parts (segmint/artifacts.py).
ARTIFACT_TABLES = {
    "model_artifacts": """
        run_id varchar not null,
        name varchar not null,
        part bigint not null,
        content varchar not null,
        sha256 varchar not null,
        created_at timestamp not null,
        primary key (run_id, name, part)""",
}
