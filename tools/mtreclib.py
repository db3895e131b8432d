"""MTReclib's backbones in PyTorch, as REFERENCE.md section 5 defines them, with the sizes
in `D`, read from daa's registry by `configure` (the backbone entry, the AliExpress schema
and embedding entries), so that both frameworks build the same model. Shared by
make_parity_fixtures.py and torch_step_bench.py."""
import pathlib
import tomllib

import numpy as np
import torch

REGISTRY = pathlib.Path(__file__).resolve().parent.parent / "registry"
D = {}
# Registry keys of the backbone entries and their names here.
KEYS = {"bottom_dims": "bottom", "tower_dims": "tower", "experts": "experts", "shared_experts": "shared",
        "task_experts": "specific", "critics": "critics", "dropout": "dropout"}


def entry(directory, name):
    with open(REGISTRY / directory / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


def configure(name, **overrides):
    """Sets `D` to backbone entry `name` at its registry sizes, then `overrides` (keys of D)."""
    schema = entry("schemas", "aliexpress")["schema"]
    D.clear()
    D.update({"cards": schema["categorical"]["cardinalities"], "numerical": schema["numerical"]["count"],
              "tasks": len(schema["labels"]), "embed": entry("embeddings", "fields")["dim"]})
    D.update({KEYS[k]: v for k, v in entry("backbones", name).items() if k in KEYS})
    D.update(overrides)


class EmbeddingLayer(torch.nn.Module):
    def __init__(self, field_dims, embed_dim):
        super().__init__()
        self.embedding = torch.nn.Embedding(sum(field_dims), embed_dim)
        torch.nn.init.xavier_uniform_(self.embedding.weight.data)

    def forward(self, x):  # x carries its field offsets already
        return self.embedding(x)


class MultiLayerPerceptron(torch.nn.Module):
    def __init__(self, input_dim, embed_dims, dropout, output_layer=True):
        super().__init__()
        layers = []
        for embed_dim in embed_dims:
            layers += [torch.nn.Linear(input_dim, embed_dim), torch.nn.BatchNorm1d(embed_dim),
                       torch.nn.ReLU(), torch.nn.Dropout(p=dropout)]
            input_dim = embed_dim
        if output_layer:
            layers.append(torch.nn.Linear(input_dim, 1))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)


class Base(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = EmbeddingLayer(D["cards"], D["embed"])
        self.numerical_layer = torch.nn.Linear(D["numerical"], D["embed"])
        self.embed_output_dim = (len(D["cards"]) + 1) * D["embed"]

    def fields(self, c, n):
        return torch.cat([self.embedding(c), self.numerical_layer(n).unsqueeze(1)], 1)

    def emb(self, c, n):
        return self.fields(c, n).view(-1, self.embed_output_dim)


class SharedBottom(Base):
    def __init__(self):
        super().__init__()
        self.bottom = MultiLayerPerceptron(self.embed_output_dim, D["bottom"], D["dropout"], output_layer=False)
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(D["bottom"][-1], D["tower"], D["dropout"]) for _ in range(D["tasks"])])

    def forward(self, c, n):
        fea = self.bottom(self.emb(c, n))
        return [torch.sigmoid(t(fea).squeeze(1)) for t in self.tower]


class SingleTask(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.ModuleList([EmbeddingLayer(D["cards"], D["embed"]) for _ in range(D["tasks"])])
        self.numerical_layer = torch.nn.ModuleList([torch.nn.Linear(D["numerical"], D["embed"]) for _ in range(D["tasks"])])
        self.embed_output_dim = (len(D["cards"]) + 1) * D["embed"]
        self.bottom = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, D["bottom"], D["dropout"], output_layer=False) for _ in range(D["tasks"])])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(D["bottom"][-1], D["tower"], D["dropout"]) for _ in range(D["tasks"])])

    def forward(self, c, n):
        out = []
        for i in range(D["tasks"]):
            emb = torch.cat([self.embedding[i](c), self.numerical_layer[i](n).unsqueeze(1)], 1).view(-1, self.embed_output_dim)
            out.append(torch.sigmoid(self.tower[i](self.bottom[i](emb)).squeeze(1)))
        return out


class OMoE(Base):
    def __init__(self, experts=None):
        super().__init__()
        experts = experts or D["experts"]
        self.expert = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, D["bottom"], D["dropout"], output_layer=False) for _ in range(experts)])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(D["bottom"][-1], D["tower"], D["dropout"]) for _ in range(D["tasks"])])
        self.gate = torch.nn.Sequential(torch.nn.Linear(self.embed_output_dim, experts), torch.nn.Softmax(dim=1))

    def forward(self, c, n):
        emb = self.emb(c, n)
        gate = self.gate(emb).unsqueeze(1)
        fea = torch.bmm(gate, torch.cat([e(emb).unsqueeze(1) for e in self.expert], dim=1)).squeeze(1)
        return [torch.sigmoid(t(fea).squeeze(1)) for t in self.tower]


class MMoE(Base):
    def __init__(self, experts=None):
        super().__init__()
        experts = experts or D["experts"]
        self.expert = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, D["bottom"], D["dropout"], output_layer=False) for _ in range(experts)])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(D["bottom"][-1], D["tower"], D["dropout"]) for _ in range(D["tasks"])])
        self.gate = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(self.embed_output_dim, experts), torch.nn.Softmax(dim=1)) for _ in range(D["tasks"])])

    def forward(self, c, n):
        emb = self.emb(c, n)
        fea = torch.cat([e(emb).unsqueeze(1) for e in self.expert], dim=1)
        return [torch.sigmoid(self.tower[i](torch.bmm(self.gate[i](emb).unsqueeze(1), fea).squeeze(1)).squeeze(1)) for i in range(D["tasks"])]


class PLE(Base):
    def __init__(self, shared=None, specific=None):
        super().__init__()
        shared, specific = shared or D["shared"], specific or D["specific"]
        self.layers_num = len(D["bottom"])
        task_experts, task_gates, share_experts, share_gates = [], [], [], []
        for i in range(self.layers_num):
            input_dim = self.embed_output_dim if i == 0 else D["bottom"][i - 1]
            share_experts.append(torch.nn.ModuleList([MultiLayerPerceptron(input_dim, [D["bottom"][i]], D["dropout"], output_layer=False) for _ in range(shared)]))
            share_gates.append(torch.nn.Sequential(torch.nn.Linear(input_dim, shared + D["tasks"] * specific), torch.nn.Softmax(dim=1)))
            task_experts.append(torch.nn.ModuleList([torch.nn.ModuleList([MultiLayerPerceptron(input_dim, [D["bottom"][i]], D["dropout"], output_layer=False) for _ in range(specific)]) for _ in range(D["tasks"])]))
            task_gates.append(torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(input_dim, shared + specific), torch.nn.Softmax(dim=1)) for _ in range(D["tasks"])]))
        self.task_experts = torch.nn.ModuleList(task_experts)
        self.task_gates = torch.nn.ModuleList(task_gates)
        self.share_experts = torch.nn.ModuleList(share_experts)
        self.share_gates = torch.nn.ModuleList(share_gates)
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(D["bottom"][-1], D["tower"], D["dropout"]) for _ in range(D["tasks"])])

    def forward(self, c, n):
        emb = self.emb(c, n)
        task_fea = [emb for _ in range(D["tasks"] + 1)]
        for i in range(self.layers_num):
            share_output = [e(task_fea[-1]).unsqueeze(1) for e in self.share_experts[i]]
            task_output_list = []
            for j in range(D["tasks"]):
                task_output = [e(task_fea[j]).unsqueeze(1) for e in self.task_experts[i][j]]
                task_output_list.extend(task_output)
                mix = torch.cat(task_output + share_output, dim=1)
                gate = self.task_gates[i][j](task_fea[j]).unsqueeze(1)
                task_fea[j] = torch.bmm(gate, mix).squeeze(1)
            if i != self.layers_num - 1:
                gate = self.share_gates[i](task_fea[-1]).unsqueeze(1)
                mix = torch.cat(task_output_list + share_output, dim=1)
                task_fea[-1] = torch.bmm(gate, mix).squeeze(1)
        return [torch.sigmoid(self.tower[i](task_fea[i]).squeeze(1)) for i in range(D["tasks"])]


class AITM(Base):
    def __init__(self):
        super().__init__()
        d = D["bottom"][-1]
        self.hidden_dim = d
        self.g = torch.nn.ModuleList([torch.nn.Linear(d, d) for _ in range(D["tasks"] - 1)])
        self.h1, self.h2, self.h3 = torch.nn.Linear(d, d), torch.nn.Linear(d, d), torch.nn.Linear(d, d)
        self.bottom = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, D["bottom"], D["dropout"], output_layer=False) for _ in range(D["tasks"])])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(d, D["tower"], D["dropout"]) for _ in range(D["tasks"])])

    def forward(self, c, n):
        emb = self.emb(c, n)
        fea = [b(emb) for b in self.bottom]
        for i in range(1, D["tasks"]):
            p = self.g[i - 1](fea[i - 1]).unsqueeze(1)
            q = fea[i].unsqueeze(1)
            x = torch.cat([p, q], dim=1)
            V, K, Q = self.h1(x), self.h2(x), self.h3(x)
            fea[i] = torch.sum(torch.nn.functional.softmax(torch.sum(K * Q, 2, True) / np.sqrt(self.hidden_dim), dim=1) * V, 1)
        return [torch.sigmoid(self.tower[i](fea[i]).squeeze(1)) for i in range(D["tasks"])]


class MetaHeac(Base):
    def __init__(self, experts=None, critics=None):
        super().__init__()
        experts, critics = experts or D["experts"], critics or D["critics"]
        self.task_embedding = torch.nn.Embedding(D["tasks"], D["embed"])
        self.expert = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, D["bottom"], D["dropout"], output_layer=False) for _ in range(experts)])
        self.critic = torch.nn.ModuleList([MultiLayerPerceptron(D["bottom"][-1], D["tower"], D["dropout"]) for _ in range(critics)])
        self.expert_gate = torch.nn.Sequential(torch.nn.Linear(D["embed"] * 2, experts), torch.nn.Softmax(dim=1))
        self.critic_gate = torch.nn.Sequential(torch.nn.Linear(D["embed"] * 2, critics), torch.nn.Softmax(dim=1))

    def forward(self, c, n):
        fields = self.fields(c, n)
        b = fields.size(0)
        gate_inputs = []
        for i in range(D["tasks"]):
            task = self.task_embedding(torch.full((b, 1), i, dtype=torch.long, device=c.device)).squeeze(1)
            gate_inputs.append(torch.cat([task, torch.mean(fields, dim=1)], dim=1))
        emb = fields.view(-1, self.embed_output_dim)
        experts = torch.cat([e(emb).unsqueeze(1) for e in self.expert], dim=1)
        out = []
        for i in range(D["tasks"]):
            fea = torch.bmm(self.expert_gate(gate_inputs[i]).unsqueeze(1), experts).squeeze(1)
            critic = torch.cat([torch.sigmoid(c(fea)) for c in self.critic], dim=1)
            out.append(torch.mean(self.critic_gate(gate_inputs[i]) * critic, dim=1))
        return out


MODELS = {"sharedbottom": SharedBottom, "singletask": SingleTask, "omoe": OMoE, "mmoe": MMoE,
          "ple": PLE, "aitm": AITM, "metaheac": MetaHeac}
