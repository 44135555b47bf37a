"""A RAG query engine over a few documents with TALE, and the traced cost of each query.

Retrieval uses the original question; only the answer prompt carries the budget.

    pip install -e ".[llama-index,local]"
    python examples/llama_index_rag.py
"""

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding

from llama_index_tale import LocalLlamaLLM, TaleQueryEngine, TaleQueryTransform, TaleTracer

llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b", max_tokens=300)
docs = [
    Document(text="The bakery sells croissants for $3 each and baguettes for $4 each."),
    Document(text="On Monday the bakery sold 25 croissants and 18 baguettes."),
    Document(text="The bakery is closed on Sundays."),
]
# a real deployment uses a real embedding model; MockEmbedding keeps this example offline
index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=16))
engine = TaleQueryEngine(
    index.as_query_engine(llm=llm, similarity_top_k=3),
    TaleQueryTransform(llm=llm, estimator="heuristic"),
)
with TaleTracer() as tracer:
    response = engine.query("How much money did the bakery make on Monday?")
print(response)
tale = response.metadata["tale"]
print("budget:", tale["budget"], "tokens,", tale["style"], "style")
print(tracer.summary())
