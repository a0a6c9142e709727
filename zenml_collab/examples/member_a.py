"""Member A of the collaboration guide: create and run Pipeline A.

Run from the root of a zenml-collab repository that holds data/diabetes.csv.
"""

from zenml_collab import (
    CSVDatasource,
    Evaluator,
    RandomSplit,
    SklearnTrainer,
    StandardPreprocesser,
    TrainingPipeline,
)

training_pipeline = TrainingPipeline(name="Pipeline A")

training_pipeline.add_datasource(CSVDatasource(name="Pima Indians Diabetes",
                                               path="data/diabetes.csv"))
training_pipeline.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=42))
training_pipeline.add_preprocesser(
    StandardPreprocesser(
        features=["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin",
                  "bmi", "diabetes_pedigree", "age", "clinic"],
        labels=["has_diabetes"],
    )
)
training_pipeline.add_trainer(SklearnTrainer(model="LogisticRegression", max_iter=1000))
training_pipeline.add_evaluator(
    Evaluator(metrics=["accuracy", "precision", "recall", "f1", "roc_auc"], slices=[["clinic"]])
)

run = training_pipeline.run()
print(run.summary())
